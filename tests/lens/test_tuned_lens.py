"""The tuned lens: identity at start, trains below the logit lens, saves, refuses strangers."""

from __future__ import annotations

import json

import pytest
import torch
from lens_helpers import PROMPT, word_texts
from matplotlib.figure import Figure
from tiny import ARCHS, tiny_hf_model

from mechscope import HookedModel
from mechscope.errors import InputError
from mechscope.lens import LensComparison, TunedLens, TunedLensConfig, compare_lenses, logit_lens, train_tuned_lens
from mechscope.lens.readout import kl_from_final, read_lens_inputs
from mechscope.lens.training import train_step

TEXTS = word_texts()
CONFIG = TunedLensConfig(token_budget=10 * 8 * 32, seq_len=32, batch_size=8, lr=0.3, progress=False)


def model_of(arch: str, tokenizer, seed: int = 0) -> HookedModel:
    return HookedModel(tiny_hf_model(arch, seed=seed), tokenizer, name=arch)


@pytest.fixture(scope="module")
def trained(tokenizer) -> dict[str, TunedLens]:
    """One lens per family, trained once for the module (10 steps: well under a second each)."""
    return {arch: train_tuned_lens(model_of(arch, tokenizer), TEXTS, config=CONFIG) for arch in ARCHS}


def test_identity_lens_is_the_logit_lens(tiny):
    plain = logit_lens(tiny, PROMPT, answer="paris")
    tuned = logit_lens(tiny, PROMPT, answer="paris", tuned_lens=TunedLens(tiny))
    assert tuned.lens == "tuned lens" and plain.lens == "logit lens"
    torch.testing.assert_close(tuned.top_probs, plain.top_probs, atol=1e-6, rtol=0)
    torch.testing.assert_close(tuned.kl_to_final, plain.kl_to_final, atol=1e-6, rtol=0)
    assert torch.equal(tuned.answer_ranks, plain.answer_ranks)


@pytest.mark.parametrize("arch", ARCHS)
def test_training_beats_the_logit_lens_at_every_layer_on_heldout_text(trained, arch):
    lens = trained[arch]
    result = compare_lenses(lens.model, lens, TEXTS, seq_len=32, max_tokens=None)
    assert result.n_tokens > 0 and len(result.tuned_wins) == lens.n_layers
    assert all(result.tuned_wins), (result.logit_kl, result.tuned_kl)
    assert result.logit_kl[-1] == 0 and result.tuned_kl[-1] == 0  # final: both are the output
    torch.testing.assert_close(result.logit_perplexity[-1], result.tuned_perplexity[-1])


def test_training_leaves_the_model_untouched(tokenizer):
    model = model_of("llama-gqa", tokenizer)
    before = {name: p.detach().clone() for name, p in model.hf_model.named_parameters()}
    lens = train_tuned_lens(model, TEXTS, config=TunedLensConfig(token_budget=512, seq_len=32, batch_size=8, progress=False))
    for name, param in model.hf_model.named_parameters():
        assert param.grad is None and torch.equal(param, before[name])
    assert all(p.grad is None for p in lens.parameters())  # zeroed after the last step
    info = lens.training_info
    assert info["tokens"] == 512 and info["steps"] == 2 and info["config"]["seq_len"] == 32


@pytest.mark.parametrize("arch", ["gpt2", "gemma3-gqa", "llama-gqa"])
@pytest.mark.parametrize("unembed_dtype", [torch.float32, torch.bfloat16])
def test_fused_training_loss_matches_autograd_reference(tokenizer, arch, unembed_dtype):
    """train_step's hand-written gradient against autograd through log_softmax and kl_div."""
    model = model_of(arch, tokenizer)
    batch = read_lens_inputs(model, model.tokenize(TEXTS[:3]))
    fast, slow = TunedLens(model), TunedLens(model)
    with torch.no_grad():
        for layer, (a, b) in enumerate(zip(fast.translators, slow.translators)):
            a.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(layer))
            a.bias.normal_(0, 0.05, generator=torch.Generator().manual_seed(100 + layer))
            b.load_state_dict(a.state_dict())
    fast_kl = train_step(fast, batch, unembed_dtype=unembed_dtype)
    mask = batch.mask.bool()
    slow_kl = []
    for layer in range(slow.n_layers):
        kl = kl_from_final(batch.final_logprobs[mask], slow.apply(batch.resid[layer][mask], layer)).mean()
        kl.backward()
        slow_kl.append(float(kl.detach()))
    tol = 1e-5 if unembed_dtype == torch.float32 else 2e-2  # bfloat16 logits: about 3 significant digits
    torch.testing.assert_close(fast_kl, torch.tensor(slow_kl), atol=tol, rtol=tol)
    for a, b in zip(fast.parameters(), slow.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=tol * b.grad.abs().max(), rtol=tol)


def test_save_load_round_trip_gives_identical_outputs(trained, tmp_path):
    lens = trained["gemma3-gqa"]
    path = lens.save(tmp_path / "lens")
    assert {p.name for p in path.iterdir()} == {"tuned_lens.json", "tuned_lens.safetensors"}
    meta = json.loads((path / "tuned_lens.json").read_text())
    assert meta["model"]["model_name"] == "gemma3-gqa" and meta["training"]["steps"] == CONFIG.steps
    loaded = TunedLens.load(path, lens.model)
    resid = torch.randn(2, 5, lens.model.cfg.d_model)
    for layer in range(lens.n_layers + 1):
        assert torch.equal(loaded.apply(resid, layer), lens.apply(resid, layer))
    assert loaded.training_info == meta["training"]
    # The same weights in a fresh HookedModel (another load of the same checkpoint) are accepted.
    TunedLens.load(path, model_of("gemma3-gqa", lens.model.tokenizer))


@pytest.mark.parametrize(
    "other, why",
    [("qwen2-gqa", "same shape but different weights"), ("gemma3-gqa", "n_layers 2 (lens) vs 3 (model)")],
)
def test_loading_into_another_model_is_refused(tokenizer, tmp_path, other, why):
    path = TunedLens(model_of("llama-gqa", tokenizer)).save(tmp_path / "lens")
    with pytest.raises(InputError) as error:
        TunedLens.load(path, model_of(other, tokenizer))
    message = str(error.value)
    assert f"was trained for llama-gqa (llama, 2 layers, d_model 64), not for {other}" in message
    assert why in message and "train a lens for" in message


def test_loading_a_reseeded_checkpoint_of_the_same_family_is_refused(tokenizer, tmp_path):
    path = TunedLens(model_of("gpt2", tokenizer)).save(tmp_path / "lens")
    with pytest.raises(InputError, match="different weights"):
        TunedLens.load(path, model_of("gpt2", tokenizer, seed=1))


def test_a_lens_refuses_another_models_residuals(tokenizer):
    lens = TunedLens(model_of("llama-gqa", tokenizer))
    with pytest.raises(InputError, match="belongs to llama-gqa, not qwen2-gqa"):
        logit_lens(model_of("qwen2-gqa", tokenizer), PROMPT, tuned_lens=lens)


def test_loading_from_an_empty_directory_says_how_to_get_a_lens(tokenizer, tmp_path):
    with pytest.raises(InputError, match="no tuned lens in .*expected tuned_lens.json.*train_tuned_lens"):
        TunedLens.load(tmp_path, model_of("gpt2", tokenizer))


def test_apply_checks_the_layer(tokenizer):
    lens = TunedLens(model_of("gpt2", tokenizer))
    with pytest.raises(InputError, match=r"layer must be an int in 0..2"):
        lens.apply(torch.zeros(64), 3)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"token_budget": 0}, "token_budget"), ({"seq_len": 1}, "seq_len"), ({"optimizer": "lbfgs"}, "optimizer"),
     ({"lr": -1.0}, "lr"), ({"unembed_dtype": "float16"}, "unembed_dtype"), ({"momentum": 1.0}, "momentum")],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"TunedLensConfig.{field}"):
        TunedLensConfig(**kwargs)


def test_too_little_text_is_a_clear_error(tokenizer):
    model = model_of("gpt2", tokenizer)
    with pytest.raises(InputError, match="no train rows of 32 tokens"):
        train_tuned_lens(model, ["the cat sat"], config=TunedLensConfig(seq_len=32, progress=False))
    with pytest.raises(InputError, match="non-empty list of strings"):
        train_tuned_lens(model, "the cat sat", config=CONFIG)


def test_comparison_plot_and_dict(trained, tmp_path):
    lens = trained["llama-gqa"]
    result = compare_lenses(lens.model, lens, TEXTS, seq_len=32)
    assert isinstance(result, LensComparison)
    fig = result.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert labels == {"logit lens", "tuned lens"}
    data = json.loads(result.save(tmp_path / "cmp.json").read_text())
    assert data["type"] == "LensComparison" and len(data["tuned_kl"]) == lens.n_layers + 1
