"""Gradients at hook points: run_with_cache(grad_metric=...) against finite differences."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model

from mechscope import HookedModel

PROMPT = "when mary and john went to the store , john gave a drink to"


def _metric(logits):
    return logits[0, -1, 5] - logits[0, -1, 7]


def _points(model):
    names = ["hook_embed", "blocks.0.attn.hook_q", "blocks.0.attn.hook_v", "blocks.1.attn.hook_pattern",
             "blocks.1.attn.hook_z", "blocks.0.ln1.hook_scale", "blocks.0.mlp.hook_post", "blocks.1.hook_resid_pre",
             "ln_final.hook_scale"]
    if not model.cfg.parallel_attn:
        names.append("blocks.1.hook_resid_mid")
    return names


@pytest.fixture
def tiny64(arch, tokenizer):
    """A float64 tiny model, so that central differences are accurate to ~1e-9."""
    return HookedModel(tiny_hf_model(arch).double(), tokenizer)


def _leaf_gradient(model, name):
    """Reference: replace the point by a detached leaf and differentiate with respect to it."""
    leaf = {}

    def make_leaf(t, hook):
        leaf["t"] = t.detach().clone().requires_grad_(True)
        return leaf["t"]

    with model.hooks(fwd=[(name, make_leaf)]):
        (grad,) = torch.autograd.grad(_metric(model(PROMPT)), leaf["t"])
    return grad


def test_gradients_match_leaf_autograd(tiny64):
    names = _points(tiny64)
    _, cache = tiny64.run_with_cache(PROMPT, names=names, grad_metric=_metric)
    assert set(cache.grads) == set(names)
    for name in names:
        torch.testing.assert_close(cache.grads[name], _leaf_gradient(tiny64, name), atol=1e-9, rtol=1e-7, msg=name)


def test_gradients_match_central_differences(tiny64):
    """Finite differences, independent of autograd. transformers computes RMSNorm in
    float32 even in a float64 model, so the step and tolerance allow for float32 noise."""
    names = _points(tiny64)
    _, cache = tiny64.run_with_cache(PROMPT, names=names, grad_metric=_metric)
    generator = torch.Generator().manual_seed(0)
    eps = 1e-3
    for name in names:
        direction = torch.randn(cache[name].shape, generator=generator, dtype=torch.float64)
        direction /= direction.norm()

        def nudge(sign):
            shift = lambda t, hook: t + sign * eps * direction  # noqa: E731
            with torch.no_grad():
                return _metric(tiny64.run_with_hooks(PROMPT, fwd=[(name, shift)]))

        numeric = float((nudge(1) - nudge(-1)) / (2 * eps))
        analytic = float((cache.grads[name] * direction).sum())
        assert abs(numeric - analytic) <= 2e-3 + 1e-3 * abs(analytic), (name, numeric, analytic)


def test_grad_metric_does_not_touch_parameter_gradients(tiny):
    tiny.run_with_cache(PROMPT, names="blocks.0.hook_resid_post", grad_metric=_metric)
    assert all(p.grad is None for p in tiny.hf_model.parameters())


def test_gradients_flow_with_frozen_parameters(tiny):
    for p in tiny.hf_model.parameters():
        p.requires_grad_(False)
    _, cache = tiny.run_with_cache(PROMPT, names="blocks.0.hook_resid_post", grad_metric=_metric)
    assert cache.grads["blocks.0.hook_resid_post"].abs().sum() > 0


def test_backward_hooks_see_and_can_replace_gradients(tiny):
    _, cache = tiny.run_with_cache(PROMPT, names=["blocks.0.hook_resid_post", "hook_embed"], grad_metric=_metric)
    seen = {}

    def record(grad, hook):
        seen[hook.name] = grad.clone()

    def zero(grad, hook):
        return torch.zeros_like(grad)

    leaf = {}

    def make_leaf(t, hook):
        leaf["embed"] = t.detach().requires_grad_(True)
        return leaf["embed"]

    with tiny.hooks(fwd=[("hook_embed", make_leaf)], bwd=[("blocks.0.hook_resid_post", record)]):
        (embed_grad,) = torch.autograd.grad(_metric(tiny(PROMPT)), leaf["embed"])
    torch.testing.assert_close(seen["blocks.0.hook_resid_post"], cache.grads["blocks.0.hook_resid_post"])
    torch.testing.assert_close(embed_grad, cache.grads["hook_embed"], atol=1e-6, rtol=1e-5)
    with tiny.hooks(fwd=[("hook_embed", make_leaf)], bwd=[("blocks.0.hook_resid_post", zero)]):
        (embed_grad,) = torch.autograd.grad(_metric(tiny(PROMPT)), leaf["embed"])
    assert embed_grad.abs().max() == 0  # every path from the embedding passes through resid_post 0


def test_grad_metric_must_be_scalar(tiny):
    from mechscope.errors import InputError

    with pytest.raises(InputError, match="scalar"):
        tiny.run_with_cache(PROMPT, names="hook_embed", grad_metric=lambda logits: logits[0, -1])
