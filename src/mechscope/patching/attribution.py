"""Attribution patching: every patch's effect estimated from one backward pass.

AtP (Nanda 2022; Syed et al. 2023) linearises the metric M around the base run: the
effect of patching activation a from the base value to the source value is estimated as

    ĉ(a) = (a_source − a_base) · ∂M/∂a |base

for every cell of a sweep at once (two forward passes and one backward). AtP*
(Kramár et al. 2024) fixes its two failure modes:

* **QK fix** (``qk_fix=True``): a query or key acts only through the softmax, where
  saturation makes the linearisation poor. For q and k patches the new attention
  pattern is computed exactly (one softmax per head) and only the pattern's effect is
  linearised: ĉ = (pattern_new − pattern_base) · ∂M/∂pattern.
* **GradDrop** (``grad_drop=True``): direct and indirect effects can cancel in the
  gradient. For each layer ℓ the estimate is recomputed with the gradient through
  layer ℓ's attention and MLP outputs set to zero, and the result is the magnitude
  (1/(L−1)) Σ_ℓ |ĉ_ℓ(a)|: an unsigned score that ranks cells, not a signed effect.

The result is a :class:`PatchingResult` whose ``values`` are ``base_value + ĉ``, so it
lines up with :func:`activation_patching` cell for cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.patching.common import make_result, mean_metric, runs
from mechscope.patching.cost import check_cost, sweep_cost
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import Patch, Sweep, make_sweep
from mechscope.results import Checkpoint, no_checkpoint
from mechscope.tasks.task import Task


def attribution_patching(
    model,
    task: Task,
    *,
    what: str = "heads_by_pos",
    direction: str = "denoise",
    qk_fix: bool = False,
    grad_drop: bool = False,
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
    max_tokens: int | None = None,
    checkpoint: Checkpoint = no_checkpoint,
    progress: bool = True,
) -> PatchingResult:
    """Estimate every cell of sweep ``what`` by attribution patching (AtP, or AtP*).

    ``max_tokens`` refuses a run estimated at more work (:mod:`mechscope.patching.cost`);
    ``checkpoint`` keeps each finished GradDrop layer (``"graddrop layer 3"``), so that an
    interrupted run can continue (plain AtP is one pass: nothing to keep)."""
    base, source = runs(task, direction)
    sweep = make_sweep(model, what, n_pos=base.ids.shape[1], layers=layers, positions=positions)
    method = "atp*" if (qk_fix or grad_drop) else "atp"
    check_cost(sweep_cost(model, task, sweep, "atp*" if grad_drop else "atp"), max_tokens)
    metric = mean_metric(model, task)
    names = sorted({p.name for p in sweep.patches})
    if qk_fix and what in ("q", "k"):
        names = sorted(set(names) | set(_qk_names(sweep)))
    with torch.no_grad():
        source_logits, source_cache = model.run_with_cache(source, names=names)
    base_logits, base_cache = model.run_with_cache(base, names=names, grad_metric=metric)
    estimate_of = (lambda grads: _estimates(model, sweep, base_cache, grads, source_cache, qk_fix))
    if grad_drop:
        estimates = torch.zeros(sweep.shape)
        n_layers = model.cfg.n_layers
        for layer in tqdm(range(n_layers), desc="GradDrop", disable=not progress, leave=False):
            estimates += checkpoint(f"graddrop layer {layer}",
                                    lambda: _dropped(model, base, names, metric, layer, estimate_of))
        estimates /= max(n_layers - 1, 1)
    else:
        estimates = estimate_of(base_cache.grads)
    with torch.no_grad():
        base_value = float(metric(base_logits))
        source_value = float(metric(source_logits))
    if grad_drop:
        method += " (graddrop: unsigned)"
    return make_result(model, task, sweep, base_value + estimates, method, direction, base_value, source_value)


def attribution_patching_star(model, task: Task, **options) -> PatchingResult:
    """AtP* (Kramár et al. 2024): :func:`attribution_patching` with the QK fix and
    GradDrop, the ``atp*`` of the command line."""
    return attribution_patching(model, task, qk_fix=True, grad_drop=True, **options)


def _dropped(model, base, names: list[str], metric, layer: int, estimate_of) -> Tensor:
    """|ĉ| with the gradient through layer ``layer``'s attention and MLP outputs set to zero."""
    drop = [(f"blocks.{layer}.hook_attn_out", _zero), (f"blocks.{layer}.hook_mlp_out", _zero)]
    with model.hooks(bwd=drop):
        _, dropped = model.run_with_cache(base, names=names, grad_metric=metric)
    return estimate_of(dropped.grads).abs()


def _zero(grad: Tensor, hook) -> Tensor:
    return torch.zeros_like(grad)


def _qk_names(sweep: Sweep) -> list[str]:
    return [f"blocks.{layer}.attn.{kind}" for layer in sweep.layers
            for kind in ("hook_q", "hook_k", "hook_attn_scores", "hook_pattern")]


def _estimates(model, sweep: Sweep, base_cache, grads: dict, source_cache, qk_fix: bool) -> Tensor:
    """ĉ for every patch of the sweep, laid out like the sweep's result."""
    out = torch.zeros(sweep.shape)
    products = {}
    for patch in sweep.patches:
        if qk_fix and sweep.what in ("q", "k"):
            out[patch.cell] = _qk_fixed(model, patch, sweep.what, base_cache, grads, source_cache)
            continue
        if patch.name not in products:
            diff = source_cache[patch.name].float() - base_cache[patch.name].float()
            products[patch.name] = diff * grads[patch.name].float()
        out[patch.cell] = _select(products[patch.name], model.hook_point(patch.name), patch).sum()
    return out


def _select(tensor: Tensor, point, patch: Patch) -> Tensor:
    index = [slice(None)] * tensor.dim()
    if patch.pos is not None:
        index[point.pos_dim] = patch.pos
    if patch.head is not None:
        index[point.head_dim] = patch.head
    return tensor[tuple(index)]


def _qk_fixed(model, patch: Patch, what: str, base_cache, grads: dict, source_cache) -> float:
    """AtP* for a query or key patch: the exact new pattern, linearised beyond it."""
    layer = patch.layer
    scaling = model.adapter.in_block(layer, model.adapter.attn_path).scaling
    q, k = base_cache["q", layer].float(), base_cache["k", layer].float()  # batch pos head d_head
    scores = base_cache["attn_scores", layer].float()  # batch head query key
    pattern = base_cache["pattern", layer].float()
    grad = grads[f"blocks.{layer}.attn.hook_pattern"].float()
    group = model.cfg.n_heads // model.cfg.n_kv_heads
    positions = slice(None) if patch.pos is None else slice(patch.pos, patch.pos + 1)
    if what == "q":
        heads = [patch.head]
        dq = (source_cache["q", layer] - base_cache["q", layer]).float()[:, positions, patch.head]
        kv = k[:, :, patch.head // group]
        new_scores = scores[:, patch.head].clone()
        new_scores[:, positions] += torch.einsum("bqd,bkd->bqk", dq, kv) * scaling
        new = {patch.head: new_scores}
    else:
        heads = list(range(patch.head * group, (patch.head + 1) * group))
        dk = (source_cache["k", layer] - base_cache["k", layer]).float()[:, positions, patch.head]
        new = {}
        for head in heads:
            new_scores = scores[:, head].clone()
            new_scores[:, :, positions] += torch.einsum("bqd,bkd->bqk", q[:, :, head], dk) * scaling
            new[head] = new_scores
    total = 0.0
    for head in heads:
        delta = new[head].softmax(-1) - pattern[:, head]
        total += float((delta * grad[:, head]).sum())
    return total
