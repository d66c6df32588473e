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

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.hooks.replay import record_block_inputs, replay_names, run_from
from mechscope.hooks.tokens import TokenBatch
from mechscope.patching.common import make_result, runs
from mechscope.patching.cost import check_cost, sweep_cost
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import Patch, Sweep, make_sweep, plan_runs
from mechscope.results import Checkpoint, no_checkpoint
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
    max_tokens: int | None = None,
    checkpoint: Checkpoint = no_checkpoint,
    progress: bool = True,
) -> PatchingResult:
    """Patch every cell of sweep ``what`` (see :mod:`mechscope.patching.specs`), fast.

    Args:
        direction: ``denoise`` (clean into corrupted) or ``noise`` (corrupted into clean).
        layers, positions: restrict the sweep (default: all).
        max_rows: most sequences in one batched run (copies × prompts).
        max_tokens: refuse (:class:`~mechscope.errors.CostError`), before running, a
            sweep estimated at more work than this (see :mod:`mechscope.patching.cost`).
        checkpoint: keeps each finished layer of the sweep (``"layer 3"``), so that an
            interrupted sweep can continue (see :data:`mechscope.results.Checkpoint`).
    """
    base, source = runs(task, direction)
    sweep = make_sweep(model, what, n_pos=base.ids.shape[1], layers=layers, positions=positions)
    check_cost(sweep_cost(model, task, sweep, "exact", max_rows=max_rows), max_tokens)
    metric = task.metric_fn(model)
    answer_pos = task.answer_pos.to(model.device)
    with torch.no_grad():
        source_logits, source_cache = model.run_with_cache(source, names=sorted({p.name for p in sweep.patches}))
        values, base_value = run_sweep(model, sweep, base, source_cache, metric, answer_pos,
                                       max_rows=max_rows, checkpoint=checkpoint, progress=progress)
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
    checkpoint: Checkpoint = no_checkpoint,
    progress: bool = True,
) -> tuple[Tensor, float]:
    """The metric (mean over prompts) after each patch of ``sweep`` on the ``base`` run,
    copying values from ``source`` (activations by hook name, shaped like the base run's);
    also the unpatched base run's metric. The fast path described in the module docstring;
    each layer's values pass through ``checkpoint`` as one part."""
    names = sorted({p.name for p in sweep.patches})
    with record_block_inputs(model) as inputs:
        base_logits, base_cache = model.run_with_cache(base, names=replay_names(model) + names)
    n_prompts = base.ids.shape[0]
    plan = plan_runs(sweep, int(answer_pos.min()), max(1, max_rows // n_prompts))
    values = torch.empty(sweep.shape)
    bar = tqdm(total=len(sweep.patches), desc=f"patching {sweep.what}", disable=not progress, leave=False)

    def patch_layer(layer: int) -> Tensor:
        block = torch.empty(sweep.shape[1:])
        for _, start, chunk in (run for run in plan if run[0] == layer):
            hook = _patcher(chunk, source, start, n_prompts)
            logits = run_from(model, inputs, base_cache, layer=layer, start=start, copies=len(chunk),
                              readout=answer_pos, fwd=[(name, hook) for name in {p.name for p in chunk}])
            per_copy = metric(logits).view(len(chunk), n_prompts).mean(1)
            for patch, value in zip(chunk, per_copy.tolist()):
                block[patch.cell[1:]] = value
            bar.update(len(chunk))
        return block

    done = 0
    for i, layer in enumerate(sweep.layers):  # a patch's cell starts with its layer's index
        values[i] = checkpoint(f"layer {layer}", lambda: patch_layer(layer))
        done += sum(len(chunk) for run_layer, _, chunk in plan if run_layer == layer)
        bar.n = done  # also counts a layer kept from an earlier run
        bar.refresh()
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
