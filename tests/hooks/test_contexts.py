"""Hooks in combination: patching with gradients, nesting under eager, other dtypes."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model

from mechscope import HookedModel
from mechscope.errors import InputError

PROMPT = "when mary and john went to the store , john gave a drink to"


def _metric(logits):
    return logits[0, -1, 5] - logits[0, -1, 7]


def test_gradients_inside_a_patching_context(tiny):
    """Attribution patching needs gradients at a point an outer context patches with a
    constant (a cached activation): the gradient there is still defined."""
    _, clean = tiny.run_with_cache(PROMPT, names="blocks.0.hook_resid_post")
    patch = clean["resid_post", 0] * 0.5
    with tiny.hooks(fwd=[("blocks.0.hook_resid_post", lambda t, hook: patch)]):
        _, cache = tiny.run_with_cache(PROMPT, names=["blocks.0.hook_resid_post", "hook_embed"], grad_metric=_metric)
    assert cache.grads["blocks.0.hook_resid_post"].abs().sum() > 0
    assert cache.grads["hook_embed"].abs().max() == 0  # the patch cuts the embedding off
    torch.testing.assert_close(cache["resid_post", 0], patch)


def test_backward_hooks_fire_with_frozen_parameters(tiny):
    for p in tiny.hf_model.parameters():
        p.requires_grad_(False)
    fired = []
    with tiny.hooks(bwd=[("blocks.0.hook_resid_post", lambda g, hook: fired.append(hook.name))]):
        _metric(tiny(PROMPT)).backward()
    assert fired == ["blocks.0.hook_resid_post"]


def test_nested_attention_contexts_restore_eager(arch, tokenizer):
    model = HookedModel(tiny_hf_model(arch, "eager"), tokenizer)
    with model.hooks(fwd=[("blocks.0.attn.hook_pattern", lambda t, hook: None)]):
        assert model.hf_model.config._attn_implementation == "mechscope"
        with model.hooks(fwd=[("blocks.1.attn.hook_q", lambda t, hook: None)]):
            model(PROMPT)
        assert model.hf_model.config._attn_implementation == "mechscope"
    assert model.hf_model.config._attn_implementation == "eager"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models(arch, tokenizer, dtype):
    """Hooks work in bf16/fp16: logits agree with HF's own, replacements of another dtype
    are cast, and the decomposition holds to half-precision accuracy."""
    hf = tiny_hf_model(arch, "eager").to(dtype)
    model = HookedModel(hf, tokenizer)
    ids = model.to_tokens(PROMPT)
    with torch.no_grad():
        expected = hf(ids).logits
    logits, cache = model.run_with_cache(ids)
    assert cache["blocks.0.hook_resid_post"].dtype == dtype
    torch.testing.assert_close(logits, expected, atol=2e-2, rtol=0)
    float_patch = cache["blocks.0.hook_resid_post"].float()
    patched = model.run_with_hooks(ids, fwd=[("blocks.0.hook_resid_post", lambda t, hook: float_patch)])
    torch.testing.assert_close(patched, logits, atol=2e-2, rtol=0)
    parts = cache.decompose_resid(split_heads=True, pos=-1)
    final = cache["resid_post", model.cfg.n_layers - 1][:, -1]
    torch.testing.assert_close(parts.components.sum(0), final, atol=0.1, rtol=0.02)


def test_attention_mask_only_with_ids(tiny):
    with pytest.raises(InputError, match="goes with token ids only"):
        tiny("the cat", attention_mask=torch.ones(1, 2))
    with pytest.raises(InputError, match="must match the ids"):
        tiny(torch.tensor([[4, 5, 6]]), attention_mask=torch.ones(1, 2))
