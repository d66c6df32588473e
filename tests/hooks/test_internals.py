"""Hook points hold what their names say, and replacing them does what it should."""

from __future__ import annotations

import pytest
import torch

PROMPT = "the cat sat on the mat and the dog sat on the big red mat"


def _capture_input(module):
    seen = {}

    def hook(mod, args):
        seen["input"] = args[0].detach()

    return seen, module.register_forward_pre_hook(hook)


def test_concatenated_z_is_the_output_projection_input(tiny):
    a = tiny.adapter
    out_proj = a.in_block(1, a.out_proj_path)
    seen, handle = _capture_input(out_proj)
    try:
        _, cache = tiny.run_with_cache(PROMPT, names="blocks.1.attn.hook_z")
    finally:
        handle.remove()
    z = cache["z", 1]
    assert z.shape[2:] == (tiny.cfg.n_heads, tiny.cfg.d_head)
    torch.testing.assert_close(z.flatten(2), seen["input"], atol=1e-6, rtol=0)


def test_pattern_rows_sum_to_one_and_are_causal(tiny):
    _, cache = tiny.run_with_cache(PROMPT, names="*hook_pattern")
    for layer in range(tiny.cfg.n_layers):
        pattern = cache["pattern", layer]
        assert pattern.shape[1] == tiny.cfg.n_heads
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]), atol=1e-5, rtol=0)
        assert torch.triu(pattern, diagonal=1).abs().max() == 0


def test_kv_hooks_have_kv_heads(tiny):
    _, cache = tiny.run_with_cache(PROMPT, names=["blocks.0.attn.hook_k", "blocks.0.attn.hook_v", "blocks.0.attn.hook_q"])
    assert cache["k", 0].shape[2] == tiny.cfg.n_kv_heads
    assert cache["v", 0].shape[2] == tiny.cfg.n_kv_heads
    assert cache["q", 0].shape[2] == tiny.cfg.n_heads


def test_zero_ablating_a_head_changes_logits_only_through_its_path(tiny):
    """Ablating head 2 of layer 0 leaves everything upstream and its sibling heads as
    they were; the layer's attention output moves by exactly minus that head's result."""
    names = ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_z", "blocks.0.attn.hook_result",
             "blocks.0.hook_attn_out", "hook_logits"]
    if "blocks.0.ln1_post.hook_scale" in tiny.hook_names():
        names.append("blocks.0.ln1_post.hook_scale")
    _, clean = tiny.run_with_cache(PROMPT, names=names)

    def ablate(z, hook):
        z = z.clone()
        z[:, :, 2] = 0
        return z

    with tiny.hooks(fwd=[("blocks.0.attn.hook_z", ablate)]):
        _, ablated = tiny.run_with_cache(PROMPT, names=names)
    for name in ("hook_embed", "blocks.0.hook_resid_pre"):
        torch.testing.assert_close(ablated[name], clean[name], atol=0, rtol=0)
    others = [h for h in range(tiny.cfg.n_heads) if h != 2]
    torch.testing.assert_close(ablated["z", 0][:, :, others], clean["z", 0][:, :, others], atol=0, rtol=0)
    head = clean["result", 0][:, :, 2]
    if tiny.cfg.post_norms:
        # Gemma: the post-attention norm re-normalises, so compare before it.
        pre_norm_delta = ablated["result", 0].sum(2) - clean["result", 0].sum(2)
        torch.testing.assert_close(pre_norm_delta, -head, atol=1e-5, rtol=0)
    else:
        delta = ablated["attn_out", 0] - clean["attn_out", 0]
        torch.testing.assert_close(delta, -head, atol=1e-5, rtol=0)
    assert (ablated["hook_logits"] - clean["hook_logits"]).abs().max() > 1e-3


def test_patching_resid_mid_moves_the_mlp_input_and_the_residual(tiny):
    if tiny.cfg.parallel_attn:
        pytest.skip("parallel attention has no resid_mid (test_points checks the error)")
    patch = torch.randn(1, len(tiny.to_str_tokens(PROMPT)), tiny.cfg.d_model)
    names = ["blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"]
    with tiny.hooks(fwd=[("blocks.0.hook_resid_mid", lambda t, hook: patch)]):
        _, cache = tiny.run_with_cache(PROMPT, names=names)
    torch.testing.assert_close(cache["resid_mid", 0], patch, atol=1e-6, rtol=0)
    torch.testing.assert_close(cache["resid_post", 0], patch + cache["mlp_out", 0], atol=1e-5, rtol=0)
    ln2 = tiny.adapter.norm(0, "ln2")
    seen, handle = _capture_input(ln2)
    try:
        tiny.run_with_hooks(PROMPT, fwd=[("blocks.0.hook_resid_mid", lambda t, hook: patch)])
    finally:
        handle.remove()
    torch.testing.assert_close(seen["input"], patch, atol=1e-6, rtol=0)


def test_norm_scale_is_read_and_patched(tiny):
    names = ["blocks.1.hook_resid_pre", "blocks.1.ln1.hook_scale", "blocks.1.hook_resid_post", "ln_final.hook_scale"]
    logits, cache = tiny.run_with_cache(PROMPT, names=names)
    x = cache["resid_pre", 1]
    eps = tiny.adapter.norm_eps(tiny.adapter.norm(1, "ln1"))
    if tiny.cfg.normalization == "layernorm":
        x = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(cache["scale", 1, "ln1"], (x.pow(2).mean(-1, keepdim=True) + eps).sqrt(), atol=1e-5, rtol=1e-5)
    # Doubling the final scale halves the final norm's output (less its bias), so the
    # logits' deviation from the bias-only logits halves.
    final = tiny.adapter.norm(None, "ln_final")
    bias = tiny.adapter.norm_bias(final)
    base = torch.zeros(tiny.cfg.d_vocab) if bias is None else bias @ tiny.W_U
    halved = tiny.run_with_hooks(PROMPT, fwd=[("ln_final.hook_scale", lambda s, hook: 2 * s)])
    torch.testing.assert_close(halved - base, (logits - base) / 2, atol=1e-5, rtol=1e-5)


def test_replacing_the_pattern_changes_z_accordingly(tiny):
    """A uniform causal pattern makes z the running mean of v (per kv group)."""
    def uniform(pattern, hook):
        causal = torch.ones_like(pattern).tril()
        return causal / causal.sum(-1, keepdim=True)

    with tiny.hooks(fwd=[("blocks.0.attn.hook_pattern", uniform)]):
        _, cache = tiny.run_with_cache(PROMPT, names=["blocks.0.attn.hook_v", "blocks.0.attn.hook_z"])
    v = cache["v", 0].repeat_interleave(tiny.cfg.n_heads // tiny.cfg.n_kv_heads, dim=2)
    counts = torch.arange(1, v.shape[1] + 1).view(1, -1, 1, 1)
    torch.testing.assert_close(cache["z", 0], v.cumsum(1) / counts, atol=1e-5, rtol=1e-5)


def test_head_results_sum_to_the_projection_output(tiny):
    """Per-head results (plus b_O) add up to what the output projection computes in a run
    that never asked for them; reading them leaves that output untouched."""
    a = tiny.adapter
    out_proj = a.in_block(1, a.out_proj_path)
    seen = {}
    handle = out_proj.register_forward_hook(lambda mod, args, out: seen.setdefault("out", out.detach()))
    try:
        tiny.run_with_cache(PROMPT, names="blocks.1.hook_resid_post")
        plain = seen.pop("out")
        _, cache = tiny.run_with_cache(PROMPT, names=["blocks.1.attn.hook_result"])
    finally:
        handle.remove()
    torch.testing.assert_close(seen["out"], plain, atol=0, rtol=0)
    bias = a.b_O(1)
    torch.testing.assert_close(cache["result", 1].sum(2) + (0 if bias is None else bias), plain, atol=1e-5, rtol=0)


def test_mlp_points(tiny):
    names = ["blocks.0.ln2.hook_scale", "blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out"]
    if tiny.cfg.gated_mlp:
        names.append("blocks.0.mlp.hook_pre_linear")
    _, cache = tiny.run_with_cache(PROMPT, names=names)
    assert cache["pre", 0].shape[-1] == tiny.cfg.d_mlp
    out_proj = tiny.adapter.in_block(0, tiny.adapter.mlp_out_proj_path)
    down = cache["post", 0] @ tiny.adapter.W_out(0) + (0 if out_proj.bias is None else out_proj.bias)
    if not tiny.cfg.post_norms:
        torch.testing.assert_close(down, cache["mlp_out", 0], atol=1e-5, rtol=0)
    if tiny.cfg.gated_mlp:
        act = tiny.adapter.in_block(0, "mlp.act_fn")
        torch.testing.assert_close(act(cache["pre", 0]) * cache["pre_linear", 0], cache["post", 0], atol=1e-5, rtol=0)


def test_patching_one_kv_head_touches_only_its_query_group(tiny):
    """Under grouped-query attention a key/value head serves n_heads / n_kv_heads query
    heads; replacing kv head 0 changes exactly those heads' z."""
    group = tiny.cfg.n_heads // tiny.cfg.n_kv_heads
    names = ["blocks.0.attn.hook_z"]
    _, clean = tiny.run_with_cache(PROMPT, names=names)

    def scramble(v, hook):
        v = v.clone()
        v[:, :, 0] = torch.randn_like(v[:, :, 0])
        return v

    with tiny.hooks(fwd=[("blocks.0.attn.hook_v", scramble)]):
        _, patched = tiny.run_with_cache(PROMPT, names=names)
    changed = (patched["z", 0] - clean["z", 0]).abs().amax(dim=(0, 1, 3)) > 1e-6
    assert changed.tolist() == [h < group for h in range(tiny.cfg.n_heads)]


def test_kept_activations_are_copies(tiny):
    """An in-place edit by a later hook (here on the next block's resid_pre, the very
    same tensor as this block's resid_post) does not change what the cache kept."""
    def zero_in_place(t, hook):
        t.zero_()

    names = ["blocks.0.hook_resid_post"]
    _, clean = tiny.run_with_cache(PROMPT, names=names)
    with tiny.hooks(fwd=[("blocks.1.hook_resid_pre", zero_in_place)]):
        # run_with_cache's hooks run after the outer context's, on each point in turn
        _, cache = tiny.run_with_cache(PROMPT, names=names)
    torch.testing.assert_close(cache["resid_post", 0], clean["resid_post", 0])


def test_norm_outputs_are_what_attention_mlp_and_unembedding_read(tiny):
    last = tiny.cfg.n_layers - 1
    reads_mlp = "blocks.0.hook_resid_pre" if tiny.cfg.parallel_attn else "blocks.0.hook_resid_mid"
    names = ["blocks.0.hook_resid_pre", reads_mlp, f"blocks.{last}.hook_resid_post",
             "blocks.0.ln1.hook_normalized", "blocks.0.ln2.hook_normalized", "ln_final.hook_normalized"]
    _, cache = tiny.run_with_cache(PROMPT, names=names)
    a = tiny.adapter
    with torch.no_grad():
        torch.testing.assert_close(cache["normalized", 0, "ln1"], a.norm(0, "ln1")(cache["resid_pre", 0]))
        torch.testing.assert_close(cache["normalized", 0, "ln2"], a.norm(0, "ln2")(cache[reads_mlp]))
        torch.testing.assert_close(cache["ln_final.hook_normalized"], a.norm(None, "ln_final")(cache["resid_post", last]))
    # replacing the MLP's input changes the MLP output, and not the residual it reads
    changed = torch.zeros_like(cache["normalized", 0, "ln2"])
    with tiny.hooks(fwd=[("blocks.0.ln2.hook_normalized", lambda t, hook: changed)]):
        _, patched = tiny.run_with_cache(PROMPT, names=[reads_mlp, "blocks.0.hook_mlp_out"])
    torch.testing.assert_close(patched[reads_mlp], cache[reads_mlp])
    expected = tiny.adapter.mlp_out_module(0)(tiny.adapter.in_block(0, tiny.adapter.mlp_path)(changed)) \
        if tiny.cfg.post_norms else tiny.adapter.in_block(0, tiny.adapter.mlp_path)(changed)
    torch.testing.assert_close(patched["mlp_out", 0], expected, atol=1e-5, rtol=1e-5)
