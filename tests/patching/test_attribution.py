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
