"""The residual algebra of ActivationCache: pieces sum to the whole."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import HookPointError

PROMPT = "when mary and john went to the store , john gave a drink to"


def test_decompose_resid_sums_to_resid_post(tiny):
    _, cache = tiny.run_with_cache(PROMPT)
    parts = cache.decompose_resid()
    n = tiny.cfg.n_layers
    assert len(parts) == len(parts.components) == (2 if tiny.cfg.positional == "learned" else 1) + 2 * n
    torch.testing.assert_close(parts.components.sum(0), cache["resid_post", n - 1], atol=1e-4, rtol=0)
    partial = cache.decompose_resid(layer=1)
    torch.testing.assert_close(partial.components.sum(0), cache["resid_pre", 1], atol=1e-4, rtol=0)


def test_split_heads_decomposition_sums_to_resid_post(tiny):
    _, cache = tiny.run_with_cache(PROMPT)
    parts = cache.decompose_resid(split_heads=True, pos=-1)
    assert "L1H3" in parts.labels
    torch.testing.assert_close(parts.components.sum(0), cache["resid_post", tiny.cfg.n_layers - 1][:, -1], atol=1e-4, rtol=0)


def test_stack_head_results_sum_to_attn_out_less_bias(tiny):
    _, cache = tiny.run_with_cache(PROMPT)
    heads = cache.stack_head_results()
    assert heads.components.shape[0] == tiny.cfg.n_layers * tiny.cfg.n_heads
    layer0 = heads.components[: tiny.cfg.n_heads].sum(0)
    bias = tiny.adapter.b_O(0)
    if bias is not None:
        layer0 = layer0 + bias
    torch.testing.assert_close(layer0, cache["attn_out", 0], atol=1e-4, rtol=0)


def test_accumulated_resid(tiny):
    _, cache = tiny.run_with_cache(PROMPT)
    mid = not tiny.cfg.parallel_attn
    stack = cache.accumulated_resid(incl_mid=mid)
    expected = []
    for layer in range(tiny.cfg.n_layers):
        expected += [("resid_pre", layer)] + ([("resid_mid", layer)] if mid else [])
    expected.append(("resid_post", tiny.cfg.n_layers - 1))
    assert len(stack) == len(expected) and stack.labels[0] == "0_pre" and stack.labels[-1] == "final_post"
    for component, key in zip(stack.components, expected):
        torch.testing.assert_close(component, cache[key], atol=0, rtol=0)
    up_to_1 = cache.accumulated_resid(layer=1)
    assert up_to_1.labels == ("0_pre", "1_pre")


def test_logit_attrs_sum_to_the_logit(tiny):
    """Direct attributions with the final scale frozen add up to the logit, less the
    norm bias's and unembedding bias's constant share."""
    logits, cache = tiny.run_with_cache(PROMPT)
    last = cache.batch.last_positions()
    parts = cache.decompose_resid(split_heads=True, pos=last)
    token, other = 5, 9
    attrs = cache.logit_attrs(parts.components, token, other, pos=last)
    assert attrs.shape == (len(parts), 1)
    norm_bias = tiny.adapter.norm_bias(tiny.adapter.norm(None, "ln_final"))
    direction = tiny.W_U[:, token] - tiny.W_U[:, other]
    constant = 0.0 if norm_bias is None else float((norm_bias @ direction).detach())
    expected = logits[0, -1, token] - logits[0, -1, other]
    torch.testing.assert_close(attrs.sum(0)[0] + constant, expected, atol=1e-4, rtol=0)


def test_apply_ln_to_stack_reproduces_the_norm(tiny):
    _, cache = tiny.run_with_cache(PROMPT)
    resid = cache["resid_post", tiny.cfg.n_layers - 1]
    norm = tiny.adapter.norm(None, "ln_final")
    bias = tiny.adapter.norm_bias(norm)
    got = cache.apply_ln_to_stack(resid.unsqueeze(0))[0] + (0 if bias is None else bias)
    torch.testing.assert_close(got, norm(resid), atol=1e-5, rtol=1e-5)


def test_missing_points_say_how_to_fix(tiny):
    _, cache = tiny.run_with_cache(PROMPT, names="blocks.0.hook_resid_pre")
    with pytest.raises(HookPointError, match="was not kept.*run_with_cache with names"):
        cache.decompose_resid()
    assert cache["resid_pre", 0] is cache["blocks.0.hook_resid_pre"]


def test_positions_and_device_options(tiny):
    _, full = tiny.run_with_cache(PROMPT, names=["blocks.0.hook_resid_post", "blocks.0.attn.hook_pattern"])
    _, some = tiny.run_with_cache(PROMPT, names=["blocks.0.hook_resid_post", "blocks.0.attn.hook_pattern"],
                                  positions=[0, 3], device="cpu")
    torch.testing.assert_close(some["resid_post", 0], full["resid_post", 0][:, [0, 3]])
    torch.testing.assert_close(some["pattern", 0], full["pattern", 0][:, :, [0, 3]])
    _, last = tiny.run_with_cache(PROMPT, names="blocks.0.hook_resid_post", positions=-1)
    torch.testing.assert_close(last["resid_post", 0], full["resid_post", 0][:, -1:])
