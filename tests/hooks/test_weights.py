"""Weights in TransformerLens layouts agree with what the hook points see."""

from __future__ import annotations

import torch

PROMPT = "the cat sat on the mat"


def _ln1_out(model, cache, layer):
    return model.adapter.norm(layer, "ln1")(cache["resid_pre", layer])


def _project(x, weight, bias):
    out = torch.einsum("bpm,hmd->bphd", x, weight)
    return out if bias is None else out + bias


@torch.no_grad()
def test_values_are_ln1_output_times_W_V(tiny):
    _, cache = tiny.run_with_cache(PROMPT, names=["blocks.1.hook_resid_pre", "blocks.1.attn.hook_v"])
    x = _ln1_out(tiny, cache, 1)
    expected = _project(x, tiny.adapter.W_V(1), tiny.adapter.b_V(1))
    torch.testing.assert_close(cache["v", 1], expected, atol=1e-5, rtol=1e-5)
    assert tiny.W_V.shape == (tiny.cfg.n_layers, tiny.cfg.n_kv_heads, tiny.cfg.d_model, tiny.cfg.d_head)


@torch.no_grad()
def test_queries_and_keys_are_ln1_output_times_W_Q_W_K(tiny):
    """Rotary positions leave position 0 unrotated, so there q and k are plain projections
    (followed, in Gemma, by the per-head q/k norms, which W_Q/W_K do not include)."""
    names = ["blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k"]
    _, cache = tiny.run_with_cache(PROMPT, names=names)
    x = _ln1_out(tiny, cache, 0)
    pos = slice(None) if tiny.cfg.positional == "learned" else slice(0, 1)
    q = _project(x, tiny.adapter.W_Q(0), tiny.adapter.b_Q(0))
    k = _project(x, tiny.adapter.W_K(0), tiny.adapter.b_K(0))
    if tiny.cfg.post_norms:
        attn = tiny.adapter.in_block(0, "self_attn")
        q, k = attn.q_norm(q), attn.k_norm(k)
    torch.testing.assert_close(cache["q", 0][:, pos], q[:, pos], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache["k", 0][:, pos], k[:, pos], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_mlp_pre_is_ln2_output_times_W_in(tiny):
    reads = "blocks.0.hook_resid_pre" if tiny.cfg.parallel_attn else "blocks.0.hook_resid_mid"
    _, cache = tiny.run_with_cache(PROMPT, names=[reads, "blocks.0.mlp.hook_pre"])
    mlp_in = cache[reads]
    x = tiny.adapter.norm(0, "ln2")(mlp_in)
    bias = tiny.adapter.in_block(0, tiny.adapter.mlp_in_path).bias
    expected = x @ tiny.adapter.W_in(0) + (0 if bias is None else bias)
    torch.testing.assert_close(cache["pre", 0], expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_embedding_and_unembedding(tiny):
    ids = tiny.to_tokens(PROMPT)
    last = f"blocks.{tiny.cfg.n_layers - 1}.hook_resid_post"
    _, cache = tiny.run_with_cache(ids, names=["hook_embed", last, "hook_logits"])
    torch.testing.assert_close(cache["hook_embed"][0], tiny.W_E[ids[0]], atol=1e-6, rtol=0)
    assert tiny.W_U.shape == (tiny.cfg.d_model, tiny.cfg.d_vocab)
    final = tiny.adapter.norm(None, "ln_final")(cache[last])
    logits = final @ tiny.W_U + (0 if tiny.b_U is None else tiny.b_U)
    torch.testing.assert_close(cache["hook_logits"], logits, atol=1e-5, rtol=1e-5)
