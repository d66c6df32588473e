"""SAE evaluation: every metric against a slow reference, and exact values for known SAEs."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from tiny import WORDS, tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.corpus import token_batches
from mechscope.errors import InputError
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.sae.evaluate import evaluate_sae

HOOK = "blocks.0.hook_resid_post"


def _model(arch: str = "llama-gqa") -> HookedModel:
    return HookedModel(tiny_hf_model(arch), tiny_tokenizer(), name=arch)


def _texts(n: int = 40, length: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(length)) for _ in range(n)]


def identity_sae(d: int, hook: str = HOOK, scale: float = 1.0) -> SparseAutoencoder:
    """Latents relu(x_i), relu(-x_i); decodes ``scale * x`` exactly."""
    sae = SparseAutoencoder(SAEConfig(d_in=d, d_sae=2 * d, architecture="relu", hook_name=hook))
    with torch.no_grad():
        eye = torch.eye(d)
        sae.W_enc.copy_(torch.cat([eye, -eye]).T)
        sae.W_dec.copy_(scale * torch.cat([eye, -eye]))
    return sae


def _ids(model, rows: int = 8, seq_len: int = 16) -> list[torch.Tensor]:
    return list(token_batches(model, _texts(), seq_len=seq_len, batch_size=rows // 2, split="train"))[:2]


def _reference(model, sae, ids: torch.Tensor) -> dict[str, float]:
    """Every metric, the slow obvious way, over one concatenated batch (no BOS in the text)."""
    cfg = sae.cfg
    point = cfg.hook_name_out if cfg.is_transcoder else cfg.hook_name
    with torch.no_grad():
        logits, cache = model.run_with_cache(ids, names=[cfg.hook_name, point])
        x = cache[cfg.hook_name].reshape(-1, cfg.d_in)
        y = cache[point].reshape(-1, cfg.output_width)
        out = sae(x)
        x_hat, latents = out.output, out.latents
        seen: list[torch.Tensor] = []

        def splice(act, hook):
            if cfg.is_transcoder and hook.name == cfg.hook_name:
                seen.append(act)
                return None
            source = seen[-1] if cfg.is_transcoder else act
            return sae(source.flatten(2)).output.reshape(act.shape)

        runs = {
            "spliced": [(cfg.hook_name, splice)] + ([(point, splice)] if cfg.is_transcoder else []),
            "zero_ablated": [(point, lambda act, hook: torch.zeros_like(act))],
            "mean_ablated": [(point, lambda act, hook: y.mean(0).expand(*act.shape[:2], -1).reshape(act.shape))],
        }
        targets = ids[:, 1:].reshape(-1)
        clean_lp = logits[:, :-1].reshape(-1, logits.shape[-1]).log_softmax(-1)
        ref = {"ce_clean": float(F.nll_loss(clean_lp, targets))}
        for run, hooks in runs.items():
            lp = model.run_with_hooks(ids, fwd=hooks)[:, :-1].reshape(-1, logits.shape[-1]).log_softmax(-1)
            ref[f"ce_{run}"] = float(F.nll_loss(lp, targets))
            ref[f"kl_{run}"] = float((clean_lp.exp() * (clean_lp - lp)).sum(-1).mean())
    density = (latents != 0).float().mean(0)
    return ref | {
        "l0": float((latents != 0).sum(-1).float().mean()),
        "l1": float(latents.sum(-1).mean()),
        "mse": float(((x_hat - y) ** 2).mean()),
        "fvu": float(((x_hat - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()),
        "cosine_similarity": float(F.cosine_similarity(x_hat, y, dim=-1).mean()),
        "l2_norm_in": float(y.norm(dim=-1).mean()),
        "l2_norm_out": float(x_hat.norm(dim=-1).mean()),
        "l2_ratio": float((x_hat.norm(dim=-1) / y.norm(dim=-1)).mean()),
        "relative_reconstruction_bias": float((x_hat**2).sum(-1).mean() / (x_hat * y).sum(-1).mean()),
        "dead_fraction": float((density == 0).float().mean()),
        "dense_fraction": float((density > 0.1).float().mean()),
        "ce_recovered_zero": (ref["ce_zero_ablated"] - ref["ce_spliced"]) / (ref["ce_zero_ablated"] - ref["ce_clean"]),
        "ce_recovered_mean": (ref["ce_mean_ablated"] - ref["ce_spliced"]) / (ref["ce_mean_ablated"] - ref["ce_clean"]),
        "ce_increase": ref["ce_spliced"] - ref["ce_clean"],
    }


@pytest.mark.parametrize("kind", ["topk", "transcoder", "per-head"])
def test_every_metric_matches_the_slow_reference(kind):
    model = _model()
    torch.manual_seed(0)
    if kind == "transcoder":
        cfg = SAEConfig(d_in=64, d_sae=256, architecture="topk", k=16, d_out=64,
                        hook_name="blocks.0.ln2.hook_normalized", hook_name_out="blocks.0.hook_mlp_out")
    else:
        hook = HOOK if kind == "topk" else "blocks.1.attn.hook_z"
        cfg = SAEConfig(d_in=64, d_sae=256, architecture="topk", k=16, hook_name=hook)
    sae = SparseAutoencoder(cfg)
    batches = _ids(model)
    result = evaluate_sae(model, sae, batches, n_tokens=10_000, progress=False)
    reference = _reference(model, sae, torch.cat(batches))
    assert result.n_tokens == sum(b.numel() for b in batches)
    assert result.n_predictions == sum(b.shape[0] * (b.shape[1] - 1) for b in batches)
    for name, expected in reference.items():
        got = getattr(result, name)
        assert abs(got - expected) <= 1e-4 * max(1.0, abs(expected)), (name, got, expected)
    assert abs(result.explained_variance - (1 - result.fvu)) < 1e-12


@pytest.mark.parametrize("arch", ["gpt2", "gemma3-gqa"])
def test_an_exact_dictionary_recovers_everything(arch):
    model = _model(arch)
    result = evaluate_sae(model, identity_sae(64), _texts(), n_tokens=1024, seq_len=32, progress=False)
    assert result.fvu < 1e-10 and abs(result.explained_variance - 1) < 1e-10 and result.mse < 1e-12
    assert abs(result.cosine_similarity - 1) < 1e-6 and abs(result.l2_ratio - 1) < 1e-6
    assert abs(result.ce_spliced - result.ce_clean) < 1e-5 and result.kl_spliced < 1e-6
    assert abs(result.ce_recovered_zero - 1) < 1e-3 and abs(result.ce_recovered_mean - 1) < 1e-3
    assert result.kl_zero_ablated > 1e-3 and result.kl_mean_ablated > 1e-3
    assert result.l0 == 64  # one of relu(x_i), relu(-x_i) per dimension


def test_shrinkage_and_latent_statistics_on_a_known_dictionary():
    model = _model()
    sae = identity_sae(64, scale=0.5)
    with torch.no_grad():
        sae.b_enc[:5] = -1e6  # dead: never fire
        sae.b_enc[64:69] = -1e6
        sae.b_enc[10] = 1e6  # fires on every token
    result = evaluate_sae(model, sae, _ids(model), n_tokens=10_000, progress=False)
    assert result.dead_fraction == pytest.approx(10 / 128)
    assert result.density[10] == 1 and result.density[:5].sum() == 0
    assert result.dense_fraction >= 1 / 128
    clean = identity_sae(64, scale=0.5)
    shrunk = evaluate_sae(model, clean, _ids(model), n_tokens=10_000, progress=False)
    assert shrunk.l2_ratio == pytest.approx(0.5, abs=1e-6)
    assert shrunk.relative_reconstruction_bias == pytest.approx(0.5, abs=1e-6)
    assert shrunk.cosine_similarity == pytest.approx(1.0, abs=1e-6)


def test_text_is_evaluated_on_held_out_rows_up_to_the_token_budget():
    model = _model()
    texts = _texts()
    # rows start with BOS, as a harvest's do; BOS is left out of the counted tokens
    heldout = torch.cat(list(token_batches(model, texts, seq_len=32, split="heldout", prepend_bos=True)))
    assert (heldout[:, 0] == model.tokenizer.bos_token_id).all()
    everything = evaluate_sae(model, identity_sae(64), texts, n_tokens=10**6, seq_len=32, progress=False)
    assert everything.n_tokens == heldout.numel() - len(heldout)
    from_ids = evaluate_sae(model, identity_sae(64), heldout, n_tokens=10**6, progress=False)
    assert from_ids.ce_clean == pytest.approx(everything.ce_clean, rel=1e-6)
    budget = evaluate_sae(model, identity_sae(64), texts, n_tokens=64, seq_len=32, progress=False)
    assert budget.n_tokens == 64 - 2  # two rows


def test_bos_is_left_out_of_the_metrics_by_default():
    model = _model()
    body = torch.cat(_ids(model))[:, 1:]
    ids = torch.cat([torch.full((body.shape[0], 1), model.tokenizer.bos_token_id), body], dim=1)
    skipped = evaluate_sae(model, identity_sae(64, scale=0.5), ids, n_tokens=10**6, progress=False)
    counted = evaluate_sae(model, identity_sae(64, scale=0.5), ids, n_tokens=10**6, skip_bos=False, progress=False)
    assert skipped.n_tokens == body.numel() and counted.n_tokens == ids.numel()
    assert skipped.n_predictions == counted.n_predictions


def test_results_save_as_json(tmp_path):
    model = _model()
    result = evaluate_sae(model, identity_sae(64), _ids(model), n_tokens=64, progress=False)
    data = result.to_dict()
    assert data["type"] == "SAEEvaluation" and len(data["density"]) == 128
    assert math.isfinite(result.summary()["ce_recovered_zero"])
    assert result.save(tmp_path / "eval.json").exists()


def test_bad_input_is_refused():
    model = _model()
    with pytest.raises(InputError, match="n_tokens"):
        evaluate_sae(model, identity_sae(64), _texts(), n_tokens=0)
    with pytest.raises(InputError, match="reads 32-wide"):
        evaluate_sae(model, identity_sae(32), _texts(), n_tokens=64)
    with pytest.raises(InputError, match="token ids"):
        evaluate_sae(model, identity_sae(64), [torch.randn(2, 8)], n_tokens=64)


@pytest.mark.integration
def test_an_exact_dictionary_on_smollm2_recovers_the_loss_that_ablation_destroys(smollm2):
    from mechscope.corpus import default_texts

    sae = identity_sae(smollm2.cfg.d_model, "blocks.15.hook_resid_post")
    result = evaluate_sae(smollm2, sae, default_texts(), n_tokens=64, seq_len=32, progress=False)
    assert result.n_tokens == 62 and result.fvu < 1e-8 and result.kl_spliced < 1e-6
    assert result.ce_zero_ablated - result.ce_clean > 1 and result.ce_mean_ablated - result.ce_clean > 0.5
    assert abs(result.ce_recovered_zero - 1) < 1e-4 and abs(result.ce_recovered_mean - 1) < 1e-4
