"""Activation patching: copy one activation from one run into another, for every cell.

Denoising runs the corrupted prompts and restores one clean activation at a time
(which activations suffice to bring the behaviour back?); noising runs the clean
prompts and breaks one at a time (which are necessary?)::

    task = mechscope.tasks.make_task("ioi", model, n=16)
    result = activation_patching(model, task, what="heads_by_pos")   # layer × pos × head
    result.plot().savefig("ioi_heads.png")

The fast path costs far less than a forward pass per patch. Patches that share a layer
and a first position run together, as copies of the batch in one batched run; each run
starts at the patched layer from the base run's residual and at the patched position,
with earlier positions' keys and values taken from the base run (nothing before a patch
can change, the model being causal); only the logits at each prompt's answer position
are computed. :func:`activation_patching_reference` does one plain forward per patch,
and the tests check that the two agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.hooks.replay import record_block_inputs, replay_names, run_from
from mechscope.hooks.tokens import TokenBatch
from mechscope.patching.common import make_result, runs
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import Patch, Sweep, make_sweep
from mechscope.tasks.task import MetricFn, Task, at_answer


def activation_patching(
    model,
    task: Task,
    *,
    what: str = "heads_by_pos",
    direction: str = "denoise",
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
    max_rows: int = 512,
    progress: bool = True,
) -> PatchingResult:
    """Patch every cell of sweep ``what`` (see :mod:`mechscope.patching.specs`), fast.

    Args:
        direction: ``denoise`` (clean into corrupted) or ``noise`` (corrupted into clean).
        layers, positions: restrict the sweep (default: all).
        max_rows: most sequences in one batched run (copies × prompts).
    """
    base, source = runs(task, direction)
    sweep = make_sweep(model, what, n_pos=base.ids.shape[1], layers=layers, positions=positions)
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    with torch.no_grad():
        source_logits, source_cache = model.run_with_cache(source, names=sorted({p.name for p in sweep.patches}))
        values, base_value = run_sweep(model, sweep, base, source_cache, metric, answer_pos,
                                       max_rows=max_rows, progress=progress)
        source_value = float(metric(at_answer(source_logits, answer_pos)).mean())
    return make_result(model, task, sweep, values, "exact", direction, base_value, source_value)


def run_sweep(
    model,
    sweep: Sweep,
    base: TokenBatch,
    source: Mapping[str, Tensor],
    metric: MetricFn,
    answer_pos: Tensor,
    *,
    max_rows: int = 512,
    progress: bool = True,
) -> tuple[Tensor, float]:
    """The metric (mean over prompts) after each patch of ``sweep`` on the ``base`` run,
    copying values from ``source`` (activations by hook name, shaped like the base run's);
    also the unpatched base run's metric. The fast path described in the module docstring."""
    names = sorted({p.name for p in sweep.patches})
    with record_block_inputs(model) as inputs:
        base_logits, base_cache = model.run_with_cache(base, names=replay_names(model) + names)
    values = torch.empty(sweep.shape)
    n_prompts = base.ids.shape[0]
    copies_per_run = max(1, max_rows // n_prompts)
    bar = tqdm(total=len(sweep.patches), desc=f"patching {sweep.what}", disable=not progress, leave=False)
    for (layer, start), patches in _group(sweep.patches, int(answer_pos.min())).items():
        for chunk in _chunks(patches, copies_per_run):
            hook = _patcher(chunk, source, start, n_prompts)
            logits = run_from(model, inputs, base_cache, layer=layer, start=start, copies=len(chunk),
                              readout=answer_pos, fwd=[(name, hook) for name in {p.name for p in chunk}])
            per_copy = metric(logits).view(len(chunk), n_prompts).mean(1)
            for patch, value in zip(chunk, per_copy.tolist()):
                values[patch.cell] = value
            bar.update(len(chunk))
    bar.close()
    return values, float(metric(at_answer(base_logits, answer_pos)).mean())


def activation_patching_reference(
    model,
    task: Task,
    *,
    what: str = "heads_by_pos",
    direction: str = "denoise",
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
) -> PatchingResult:
    """The slow reference: one full forward of the base prompts per patch."""
    base, source = runs(task, direction)
    sweep = make_sweep(model, what, n_pos=base.ids.shape[1], layers=layers, positions=positions)
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    values = torch.empty(sweep.shape)
    with torch.no_grad():
        _, source_cache = model.run_with_cache(source, names=sorted({p.name for p in sweep.patches}))
        for patch in sweep.patches:
            hook = _patcher([patch], source_cache, 0, base.ids.shape[0])
            logits = model.run_with_hooks(base, fwd=[(patch.name, hook)])
            values[patch.cell] = float(metric(at_answer(logits, answer_pos)).mean())
        base_value = float(metric(at_answer(model(base), answer_pos)).mean())
        source_value = float(metric(at_answer(model(source), answer_pos)).mean())
    return make_result(model, task, sweep, values, "exact", direction, base_value, source_value)


def _group(patches: Sequence[Patch], first_answer: int) -> dict[tuple[int, int], list[Patch]]:
    """Patches by (layer, first position to recompute). A patch at position p changes
    nothing before p; recomputing from p, or from the earliest answer position if that
    comes first (its logits must be recomputed), is enough."""
    groups: dict[tuple[int, int], list[Patch]] = defaultdict(list)
    for patch in patches:
        start = 0 if patch.pos is None else min(patch.pos, first_answer)
        groups[(patch.layer, start)].append(patch)
    return groups


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _patcher(patches: Sequence[Patch], source: Mapping[str, Tensor], start: int, n_prompts: int):
    """A hook writing each patch's value from ``source`` into its copy of the batch.

    Hooked tensors hold positions ``start …`` (keys of a pattern: all positions); copy c
    is rows c·n_prompts … (c+1)·n_prompts.
    """
    def hook(tensor: Tensor, point) -> Tensor:
        tensor = tensor.clone()
        pos_axis, head_axis = point.pos_dim, point.head_dim
        for copy, patch in enumerate(patches):
            if patch.name != point.name:
                continue
            target = [slice(None)] * tensor.dim()
            index = [slice(None)] * tensor.dim()
            target[0] = slice(copy * n_prompts, (copy + 1) * n_prompts)
            if patch.pos is None:
                index[pos_axis] = slice(start, None)
            else:
                target[pos_axis] = patch.pos - start
                index[pos_axis] = patch.pos
            if patch.head is not None:
                target[head_axis] = index[head_axis] = patch.head
            tensor[tuple(target)] = source[point.name][tuple(index)].to(tensor)
        return tensor

    return hook
