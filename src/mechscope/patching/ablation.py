"""Ablation: replace activations by zero, their mean over a reference set, or their
value on a random reference prompt (resampling), at any hook point.

    spec = Ablation(points="blocks.5.attn.hook_z", heads=[3], method="mean")
    with ablated(model, spec, reference=task.corrupt):
        logits = model(task.clean)

    effects = ablation_sweep(model, task, what="heads", method="resample")   # one cell per head

Zero ablation is the simplest and the least faithful (zero may be far outside the
activation's range); mean and resample ablation keep the activation on-distribution
(Chan et al. 2022; Wang et al. 2022 use mean ablation over the ABC distribution).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from mechscope.ablations import check_ablation
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.patching.activation import run_sweep
from mechscope.patching.common import make_result
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import make_sweep
from mechscope.tasks.task import Task, at_answer


@dataclass(frozen=True, kw_only=True)
class Ablation:
    """Which activations to ablate, and how."""

    points: str | tuple[str, ...]
    """Hook names or globs, e.g. ``"blocks.*.attn.hook_z"``."""
    method: str = "zero"
    """``zero``, ``mean`` (over the reference prompts) or ``resample`` (a random reference prompt each)."""
    heads: tuple[int, ...] | None = None
    """On points with a head (or kv_head) axis: only these heads. None: all."""
    positions: tuple[int, ...] | None = None
    """Only these positions. None: all."""
    seed: int = 0
    """Seeds the choice of reference prompts for ``resample``."""

    def __post_init__(self) -> None:
        check_ablation(self.method, "ablation method")


def replacement_values(model, names: Sequence[str], like: TokenBatch, method: str,
                       reference: TokenBatch | None, seed: int = 0) -> dict[str, Tensor]:
    """Per hook name, what ablation puts in place of the activation of run ``like``."""
    if method != "zero" and reference is None:
        raise InputError(f"{method} ablation needs reference prompts (e.g. reference=task.corrupt)")
    with torch.no_grad():
        _, own = model.run_with_cache(like, names=list(names))
        if method == "zero":
            return {name: torch.zeros_like(own[name]) for name in names}
        _, ref = model.run_with_cache(reference, names=list(names))
    if method == "mean":
        return {name: _mean_like(model, ref, name, own[name], reference) for name in names}
    if reference.ids.shape[1] != like.ids.shape[1]:
        raise InputError(
            f"resample ablation needs reference prompts as long as the ablated ones "
            f"({like.ids.shape[1]} tokens); received {reference.ids.shape[1]}"
        )
    rows = torch.randint(0, reference.ids.shape[0], (like.ids.shape[0],), generator=torch.Generator().manual_seed(seed))
    return {name: ref[name][rows.to(ref[name].device)] for name in names}


def _mean_like(model, ref, name: str, target: Tensor, reference: TokenBatch) -> Tensor:
    """The reference mean over real tokens (padding left out): per position when the
    lengths match (positions no reference prompt reaches take the all-token mean), else
    one mean over every real token."""
    acts = ref[name].float()
    point = model.hook_point(name)
    if point.dims[:2] != ("batch", "pos"):  # attention scores and patterns: per query position
        if acts.shape[1:] != target.shape[1:]:
            raise InputError(f"mean ablation of {name} needs reference prompts as long as the ablated ones")
        return acts.mean(0, keepdim=True).expand_as(target).to(target.dtype)
    real = reference.attention_mask.to(acts.device).float()  # batch pos
    real = real.view(*real.shape, *([1] * (acts.dim() - 2)))
    overall = (acts * real).sum((0, 1)) / real.sum((0, 1)).clamp(min=1)
    if acts.shape[1:] != target.shape[1:]:
        return overall.expand_as(target).to(target.dtype)
    count = real.sum(0)
    per_pos = torch.where(count > 0, (acts * real).sum(0) / count.clamp(min=1), overall)
    return per_pos.unsqueeze(0).expand_as(target).to(target.dtype)


def ablation_hooks(model, ablation: Ablation, *, like: TokenBatch, reference: TokenBatch | None = None):
    """Forward hooks applying ``ablation`` to runs of the prompts ``like``."""
    points = model.hook_names(ablation.points) if isinstance(ablation.points, str) else [
        name for pattern in ablation.points for name in model.hook_names(pattern)]
    values = replacement_values(model, points, like, ablation.method, reference, ablation.seed)

    def hook(tensor: Tensor, point) -> Tensor:
        index = [slice(None)] * tensor.dim()
        if ablation.positions is not None:
            _check_range("positions", ablation.positions, tensor.shape[point.pos_dim], point.name)
            index[point.pos_dim] = list(ablation.positions)
        if ablation.heads is not None:
            if point.head_dim is None:
                raise InputError(f"{point.name} has no head axis; drop heads= for it")
            _check_range("heads", ablation.heads, tensor.shape[point.head_dim], point.name)
            index[point.head_dim] = list(ablation.heads)
        tensor = tensor.clone()
        tensor[_broadcastable(index)] = values[point.name].to(tensor)[_broadcastable(index)]
        return tensor

    return [(name, hook) for name in points]


def _check_range(what: str, values: tuple[int, ...], size: int, name: str) -> None:
    bad = [v for v in values if not 0 <= v < size]
    if bad:
        raise InputError(f"{what} {bad} are outside 0..{size - 1} on {name}")


def _broadcastable(index: list) -> tuple:
    """Two list indices (positions and heads) must select their product, not pairs."""
    lists = [i for i, item in enumerate(index) if isinstance(item, list)]
    if len(lists) < 2:
        return tuple(index)
    grids = torch.meshgrid(*[torch.tensor(index[i]) for i in lists], indexing="ij")
    out = list(index)
    for axis, grid in zip(lists, grids):
        out[axis] = grid
    return tuple(out)


@contextmanager
def ablated(model, ablation: Ablation, *, like: TokenBatch, reference: TokenBatch | None = None) -> Iterator:
    """Runs of the prompts ``like`` inside the block have ``ablation`` applied."""
    with model.hooks(fwd=ablation_hooks(model, ablation, like=like, reference=reference)):
        yield model


def ablation_sweep(
    model,
    task: Task,
    *,
    what: str = "heads",
    method: str = "mean",
    reference: TokenBatch | None = None,
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> PatchingResult:
    """Ablate each cell of sweep ``what`` in turn on the clean prompts; the metric after each.

    ``reference`` defaults to the task's corrupted prompts (for mean and resample); the
    result's ``source_value`` is the metric on them, or NaN for other reference prompts
    (the task's answers do not apply to them).
    """
    check_ablation(method, "ablation method")
    base = task.clean
    own_reference = reference is None
    reference = task.corrupt if own_reference else reference
    sweep = make_sweep(model, what, n_pos=base.ids.shape[1], layers=layers, positions=positions)
    names = sorted({p.name for p in sweep.patches})
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    source = replacement_values(model, names, base, method, reference, seed)
    with torch.no_grad():
        values, base_value = run_sweep(model, sweep, base, source, metric, answer_pos, progress=progress)
        reference_value = float("nan")
        if own_reference:
            reference_value = float(metric(at_answer(model(reference), reference.last_positions())).mean())
    return make_result(model, task, sweep, values, f"{method} ablation", "noise", base_value, reference_value)
