"""What every patching technique shares: which run is patched, reading the metric at the
answer positions, and packing values into a :class:`PatchingResult`."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import Sweep
from mechscope.tasks.task import Task, at_answer

DIRECTIONS = ("denoise", "noise")


def runs(task: Task, direction: str) -> tuple[TokenBatch, TokenBatch]:
    """(base, source): the run patched into, and the run patches come from."""
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}; received {direction!r}")
    return (task.corrupt, task.clean) if direction == "denoise" else (task.clean, task.corrupt)


def mean_metric(model, task: Task) -> Callable[[Tensor], Tensor]:
    """The task metric of full-sequence logits, read at the answer positions, mean over prompts."""
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    return lambda logits: metric(at_answer(logits, answer_pos)).mean()


def make_result(model, task: Task, sweep: Sweep, values: Tensor, method: str, direction: str,
                base_value: float, source_value: float) -> PatchingResult:
    return PatchingResult(
        values=values,
        dims=sweep.dims,
        what=sweep.what,
        method=method,
        direction=direction,
        metric=task.metric,
        base_value=base_value,
        source_value=source_value,
        layers=sweep.layers,
        positions=sweep.positions,
        tokens=tuple(model.to_str_tokens(task.clean.ids[0])),
        task=task.name,
    )
