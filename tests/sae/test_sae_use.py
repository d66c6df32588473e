"""Using SAE features: splicing and feature attribution (steering: tests/steering)."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.errors import HookPointError, InputError
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.sae.attribution import exact_feature_ablation, feature_attribution
from mechscope.sae.splice import spliced
from mechscope.tasks.task import Task

PROMPT = "the cat sat on the mat and the dog"


def _model(arch: str = "llama-gqa") -> HookedModel:
    return HookedModel(tiny_hf_model(arch), tiny_tokenizer(), name=arch)


def identity_sae(d: int, hook: str) -> SparseAutoencoder:
    """A ReLU SAE with latents relu(x_i) and relu(-x_i): it reconstructs x exactly."""
    sae = SparseAutoencoder(SAEConfig(d_in=d, d_sae=2 * d, architecture="relu", hook_name=hook))
    with torch.no_grad():
        eye = torch.eye(d)
        sae.W_dec.copy_(torch.cat([eye, -eye]))
        sae.W_enc.copy_(sae.W_dec.T)
    return sae


def random_sae(d: int = 64, hook: str = "blocks.0.hook_resid_post", seed: int = 0, **kw) -> SparseAutoencoder:
    torch.manual_seed(seed)
    return SparseAutoencoder(SAEConfig(d_in=d, d_sae=4 * d, architecture="relu", hook_name=hook, **kw))


def _acts(model, name, prompt=PROMPT, **kw):
    return model.run_with_cache(model.tokenize(prompt, **kw), names=[name])[1][name]


# ------------------------------------------------------------------ splicing
@pytest.mark.parametrize("arch", ["gpt2", "llama-gqa", "gemma3-gqa", "neox-parallel"])
def test_identity_sae_spliced_in_leaves_the_model_unchanged(arch):
    model = _model(arch)
    sae = identity_sae(64, "blocks.0.hook_resid_post")
    with torch.no_grad():
        clean = model(PROMPT)
        with spliced(model, sae):
            inside = model(PROMPT)
    torch.testing.assert_close(inside, clean, atol=1e-5, rtol=1e-5)


def test_splice_puts_the_reconstruction_in_place_of_the_activation():
    model, sae, name = _model(), random_sae(), "blocks.0.hook_resid_post"
    with torch.no_grad():
        reference = model.run_with_hooks(PROMPT, fwd=[(name, lambda x, hook: sae(x).output)])
        with spliced(model, sae):
            logits = model(PROMPT)
            replaced = _acts(model, name)
    torch.testing.assert_close(logits, reference)
    torch.testing.assert_close(replaced, sae(_acts(model, name)).output.detach())
    assert (logits - model(PROMPT)).abs().max() > 1e-3  # a random SAE does change the output


def test_error_term_restores_the_output_and_edits_change_it_by_their_decoded_difference():
    model, sae, name = _model(), random_sae(), "blocks.0.hook_resid_post"
    x = _acts(model, name)
    latents = sae.encode(x).detach()
    feature = int(latents[0].sum(0).argmax())
    with torch.no_grad():
        with spliced(model, sae, error_term=True):
            assert (model(PROMPT) - model.run_with_hooks(PROMPT)).abs().max() < 1e-4
        with spliced(model, sae, error_term=True, ablate=[feature]):
            ablated = _acts(model, name)
        with spliced(model, sae, error_term=True, clamp={feature: 2.5}):
            clamped = _acts(model, name)
    direction = sae.W_dec[feature].detach()
    torch.testing.assert_close(ablated, x - latents[..., feature, None] * direction, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(clamped, x + (2.5 - latents[..., feature, None]) * direction, atol=1e-5, rtol=1e-5)


def test_bos_positions_are_left_alone_unless_asked():
    model, sae, name = _model(), random_sae(), "blocks.0.hook_resid_post"
    clean = _acts(model, name, prepend_bos=True)
    with torch.no_grad(), spliced(model, sae):
        kept = _acts(model, name, prepend_bos=True)
    with torch.no_grad(), spliced(model, sae, skip_bos=False):
        replaced = _acts(model, name, prepend_bos=True)
    torch.testing.assert_close(kept[:, 0], clean[:, 0])
    assert (kept[:, 1:] - clean[:, 1:]).abs().max() > 1e-3
    assert (replaced[:, 0] - clean[:, 0]).abs().max() > 1e-3


def test_transcoder_replaces_the_output_by_its_prediction_from_the_input():
    model = _model()
    cfg = SAEConfig(d_in=64, d_sae=128, architecture="topk", k=8, d_out=64, skip=True,
                    hook_name="blocks.0.ln2.hook_normalized", hook_name_out="blocks.0.hook_mlp_out")
    torch.manual_seed(0)
    tc = SparseAutoencoder(cfg)
    with torch.no_grad():
        tc.W_skip.normal_(0, 0.1)
        x = _acts(model, cfg.hook_name)
        with spliced(model, tc):
            predicted = _acts(model, cfg.hook_name_out)
        with spliced(model, tc, error_term=True):
            restored = model(PROMPT)
    torch.testing.assert_close(predicted, tc(x).output)
    assert (restored - model(PROMPT)).abs().max() < 1e-4


def test_per_head_sae_reads_z_with_heads_flattened():
    model = _model()
    sae = identity_sae(64, "blocks.1.attn.hook_z")  # 4 heads x 16
    with torch.no_grad(), spliced(model, sae):
        logits = model(PROMPT)
    torch.testing.assert_close(logits, model(PROMPT).detach(), atol=1e-5, rtol=1e-5)


def test_hooks_are_gone_after_an_error_inside_the_block():
    model, sae = _model(), random_sae()
    before = model(PROMPT).detach()
    with pytest.raises(RuntimeError, match="boom"), spliced(model, sae):
        raise RuntimeError("boom")
    torch.testing.assert_close(model(PROMPT).detach(), before)
    assert not model.hf_model._forward_pre_hooks


@pytest.mark.parametrize(
    "cfg, error, message",
    [
        (dict(d_in=64, hook_name="blocks.7.hook_resid_post"), HookPointError, "unknown hook point"),
        (dict(d_in=32, hook_name="blocks.0.hook_resid_post"), InputError, "reads 32-wide activations"),
        (dict(d_in=64, hook_name="blocks.0.attn.hook_pattern"), HookPointError, "one vector per token"),
        (dict(d_in=64, hook_name=None), InputError, "cfg.hook_name is None"),
    ],
)
def test_saes_that_do_not_fit_are_refused(cfg, error, message):
    sae = SparseAutoencoder(SAEConfig(d_sae=16, architecture="relu", **cfg))
    with pytest.raises(error, match=message), spliced(_model(), sae):
        pass


def test_unknown_latents_are_refused():
    with pytest.raises(InputError, match="has 256 latents"), spliced(_model(), random_sae(), ablate=[256]):
        pass


# --------------------------------------------------------------- attribution
def _task(model) -> Task:
    return Task.from_prompts(
        model, name="tiny",
        clean=["the eiffel tower is located in the city of",
               "when mary and john went to the store , john gave a drink to"],
        corrupt=["the big tower is located in the city of",
                 "when tom and john went to the store , john gave a drink to"],
        answers=[" paris", " mary"], wrong=[" rome", " john"],
    )


@pytest.mark.parametrize("hook", ["blocks.0.hook_resid_mid", "blocks.1.hook_resid_pre"])
def test_gradient_times_activation_agrees_with_exact_ablation(hook):
    model = _model()
    task = _task(model)
    sae = random_sae(hook=hook)
    with torch.no_grad():
        sae.W_dec.mul_(0.1)  # small decoded contributions: the metric is near-linear in each latent
    attribution = feature_attribution(model, sae, task)
    top = [feature for feature, _ in attribution.top(6)]
    exact = exact_feature_ablation(model, sae, task, top)
    estimate = attribution.attributions[top]
    assert torch.corrcoef(torch.stack([estimate, exact]))[0, 1] > 0.99
    torch.testing.assert_close(estimate, exact, rtol=0.1, atol=2e-3)
    with torch.no_grad():
        clean = task.metric_fn(model)(model(task.clean)[torch.arange(len(task)), task.answer_pos]).mean()
    assert abs(attribution.metric_value - float(clean)) < 1e-4  # the error term keeps the output exact
    assert attribution.by_position.sum(0).allclose(attribution.attributions, atol=1e-5)


def test_attribution_of_a_latent_that_never_fires_is_zero():
    model = _model()
    sae = random_sae(hook="blocks.0.hook_resid_mid")
    with torch.no_grad():
        sae.b_enc[7] = -1e4
    attribution = feature_attribution(model, sae, _task(model))
    assert attribution.attributions[7] == 0 and attribution.activations[7] == 0
    assert set(attribution.to_dict()) >= {"attributions", "metric_value", "task"}
