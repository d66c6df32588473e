"""Attribution patching against the things it approximates."""

from __future__ import annotations

import pytest
import torch

from mechscope.patching import activation_patching
from mechscope.patching.attribution import attribution_patching


def _metric_with(model, task, hooks):
    metric = task.metric_fn(model)
    with torch.no_grad():
        logits = model.run_with_hooks(task.corrupt, fwd=hooks)
    return float(metric(logits[torch.arange(len(task)), task.answer_pos]).mean())


@pytest.mark.parametrize("what", ["heads_by_pos", "resid", "v", "q", "pattern"])
def test_atp_is_the_directional_derivative(tiny, task, what):
    """ĉ for a cell equals the derivative of the metric along (source − base) there,
    measured by central differences through real patched runs."""
    atp = attribution_patching(tiny, task, what=what, progress=False)
    exact = activation_patching(tiny, task, what=what, progress=False)
    names = sorted({f"blocks.{layer}.{kind}" for layer in atp.layers for kind in [atp_kind(what)]})
    _, clean = tiny.run_with_cache(task.clean, names=names)
    _, corrupt = tiny.run_with_cache(task.corrupt, names=names)
    cell = tuple(int(i) for i in torch.nonzero(exact.effects.abs() == exact.effects.abs().max())[0])
    from mechscope.patching.specs import make_sweep

    sweep = make_sweep(tiny, what, n_pos=task.clean.ids.shape[1])
    patch = next(p for p in sweep.patches if p.cell == cell)
    point = tiny.hook_point(patch.name)
    eps = 1e-3

    def nudge(sign):
        def hook(t, hook):
            diff = clean[patch.name] - corrupt[patch.name]
            mask = torch.zeros_like(diff)
            index = [slice(None)] * diff.dim()
            if patch.pos is not None:
                index[point.pos_dim] = patch.pos
            if patch.head is not None:
                index[next(i for i, d in enumerate(point.dims) if d in ("head", "kv_head"))] = patch.head
            mask[tuple(index)] = 1
            return t + sign * eps * diff * mask
        return _metric_with(tiny, task, [(patch.name, hook)])

    numeric = (nudge(1) - nudge(-1)) / (2 * eps)
    estimate = float(atp.effects[cell])
    assert abs(numeric - estimate) <= 2e-3 + 2e-2 * abs(estimate), (numeric, estimate)


def atp_kind(what):
    from mechscope.patching import SWEEPS

    return SWEEPS[what][0]


def test_qk_fix_uses_the_exact_new_pattern(tiny, task):
    """For a query patch, AtP* = (pattern after the real patch − base pattern) · ∂M/∂pattern."""
    layer = tiny.cfg.n_layers - 1
    fixed = attribution_patching(tiny, task, what="q", qk_fix=True, layers=[layer], progress=False)
    q_name, p_name = f"blocks.{layer}.attn.hook_q", f"blocks.{layer}.attn.hook_pattern"
    _, clean = tiny.run_with_cache(task.clean, names=[q_name])
    metric = task.metric_fn(tiny)
    _, base = tiny.run_with_cache(task.corrupt, names=[p_name], grad_metric=lambda logits: metric(
        logits[torch.arange(len(task)), task.answer_pos]).mean())
    head = 1

    def patch_q(q, hook):
        q = q.clone()
        q[:, :, head] = clean[q_name][:, :, head]
        return q

    with tiny.hooks(fwd=[(q_name, patch_q)]):
        _, patched = tiny.run_with_cache(task.corrupt, names=[p_name])
    expected = ((patched[p_name] - base[p_name])[:, head] * base.grads[p_name][:, head]).sum()
    assert abs(float(fixed.effects[0, head]) - float(expected)) < 1e-4


def test_graddrop_of_last_layer_heads_is_their_atp_magnitude(tiny, task):
    """Dropping an earlier layer leaves a last-layer head's gradient as it was; dropping
    its own layer zeroes it. So GradDrop's (1/(L−1)) Σ|ĉ_ℓ| is |ĉ| for those heads."""
    last = tiny.cfg.n_layers - 1
    plain = attribution_patching(tiny, task, what="heads", layers=[last], progress=False)
    dropped = attribution_patching(tiny, task, what="heads", layers=[last], grad_drop=True, progress=False)
    torch.testing.assert_close(dropped.effects, plain.effects.abs(), atol=1e-5, rtol=1e-4)
    assert dropped.method.startswith("atp*")


def test_qk_fix_for_keys_covers_the_whole_query_group(tokenizer, make_task):
    """A key patch on a grouped-query model moves the pattern of every query head that
    shares the kv head: AtP* sums (new − base pattern) · ∂M/∂pattern over that group."""
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("llama-gqa"), tokenizer)
    task = make_task(model)
    layer, kv_head, group = 1, 1, model.cfg.n_heads // model.cfg.n_kv_heads
    fixed = attribution_patching(model, task, what="k", qk_fix=True, layers=[layer], progress=False)
    k_name, p_name = f"blocks.{layer}.attn.hook_k", f"blocks.{layer}.attn.hook_pattern"
    _, clean = model.run_with_cache(task.clean, names=[k_name])
    metric = task.metric_fn(model)
    _, base = model.run_with_cache(task.corrupt, names=[p_name], grad_metric=lambda logits: metric(
        logits[torch.arange(len(task)), task.answer_pos]).mean())

    def patch_k(k, hook):
        k = k.clone()
        k[:, :, kv_head] = clean[k_name][:, :, kv_head]
        return k

    with model.hooks(fwd=[(k_name, patch_k)]):
        _, patched = model.run_with_cache(task.corrupt, names=[p_name])
    heads = slice(kv_head * group, (kv_head + 1) * group)
    expected = ((patched[p_name] - base[p_name])[:, heads] * base.grads[p_name][:, heads]).sum()
    assert abs(float(fixed.effects[0, kv_head]) - float(expected)) < 1e-4


def test_graddrop_matches_gradients_zeroed_by_hand(tiny, task):
    """GradDrop for layer-0 heads: (1/(L−1)) Σ_ℓ |ĉ_ℓ|, each ĉ_ℓ from a backward pass
    with layer ℓ's attention and MLP outputs' gradients zeroed by plain hooks."""
    dropped = attribution_patching(tiny, task, what="heads", layers=[0], grad_drop=True, progress=False)
    name = "blocks.0.attn.hook_z"
    metric = task.metric_fn(tiny)
    _, clean = tiny.run_with_cache(task.clean, names=name)
    _, corrupt = tiny.run_with_cache(task.corrupt, names=name)
    diff = clean[name] - corrupt[name]
    total = torch.zeros(tiny.cfg.n_heads)
    for layer in range(tiny.cfg.n_layers):
        seen = {}

        def zero(grad, hook):
            return torch.zeros_like(grad)

        def keep(t, hook):
            seen["z"] = t
            return None

        bwd = [(f"blocks.{layer}.hook_attn_out", zero), (f"blocks.{layer}.hook_mlp_out", zero)]
        with tiny.hooks(fwd=[(name, keep)], bwd=bwd):
            logits = tiny(task.corrupt)
            value = metric(logits[torch.arange(len(task)), task.answer_pos]).mean()
            (grad,) = torch.autograd.grad(value, seen["z"])
        total += (diff * grad).sum((0, 1, 3)).abs()
    expected = total / (tiny.cfg.n_layers - 1)
    torch.testing.assert_close(dropped.effects[0], expected, atol=1e-5, rtol=1e-4)
