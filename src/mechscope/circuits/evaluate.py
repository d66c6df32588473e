"""Evaluating a circuit: the task metric when only the circuit's edges carry clean values.

::

    evaluator = EdgeEvaluator.of(model, task, ablation="resample")
    evaluator(circuit.edges)              # metric with every other edge ablated: one forward pass
    evaluator.complement(circuit.edges)   # metric with the circuit's own edges ablated
    evaluator.metrics(masks)              # (mask,) metrics of many masks, side by side

Every edge outside the circuit is ablated by correcting its receiver's input (see
:mod:`mechscope.circuits.edge_run`), so a circuit of any size costs one forward pass.
The ablated value of a sender is, per ``ablation``:

* ``resample``: its output on the paired corrupted prompt (the task's corruption; ACDC's
  and EAP's "patching"), position by position;
* ``mean``: its mean output over every real token of the corrupted prompts;
* ``zero``: zero.

:func:`~mechscope.circuits.reference.evaluate_reference` computes the same thing edge by
edge through public hook points; tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.ablations import check_ablation
from mechscope.circuits.edge_run import edge_run
from mechscope.circuits.graph import CircuitGraph, Edge
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.tasks.task import MetricFn, Task, answer_logits, at_answer

"""What an ablated edge carries instead of its sender's output."""


def sender_outputs(model, graph: CircuitGraph, batch: TokenBatch) -> Float[Tensor, "sender batch pos d_model"]:
    """Every sender's output on ``batch``, in graph order."""
    with torch.no_grad(), edge_run(model, graph, keep_outputs=True) as state:
        model(batch)
    return state.stacked()


def ablated_outputs(model, graph: CircuitGraph, task: Task, ablation: str) -> Float[Tensor, "sender batch pos d_model"]:
    """What each sender's output becomes on an ablated edge (``batch``/``pos`` may be 1)."""
    check_ablation(ablation)
    if ablation == "zero":
        return torch.zeros(len(graph.senders), 1, 1, model.cfg.d_model, device=model.device, dtype=model.dtype)
    corrupted = sender_outputs(model, graph, task.corrupt)
    if ablation == "resample":
        return corrupted
    real = task.corrupt.attention_mask.to(corrupted.device, corrupted.dtype)[None, :, :, None]
    return ((corrupted * real).sum((1, 2), keepdim=True) / real.sum()).to(corrupted.dtype)


def chunk_metric(model, task: Task, rows: slice) -> Callable[[Tensor], Tensor]:
    """The task's mean metric restricted to ``rows``: summed there, divided by all prompts.
    The normalized metric keeps the whole task's baselines (a chunk's own would differ)."""
    n = len(task)
    if task.metric == "normalized":
        whole = task.with_metric("logit_diff").metric_fn(model)
        span = float(whole(answer_logits(model, task.clean)).mean() - whole(answer_logits(model, task.corrupt)).mean())
        diff = task.subset(rows).with_metric("logit_diff").metric_fn(model)
        return lambda logits: diff(logits).sum() / span / n
    metric = task.subset(rows).metric_fn(model)
    return lambda logits: metric(logits).sum() / n


@dataclass(frozen=True)
class EdgeEvaluator:
    """The task metric of circuits of one model on one task (see the module docstring)."""

    model: object
    task: Task
    graph: CircuitGraph
    ablation: str
    ablated: Float[Tensor, "sender batch pos d_model"]
    """Each sender's ablated output."""
    metric_fn: MetricFn
    """Per-row metric of answer-position logits (the task's, baselines measured once)."""

    @classmethod
    def of(cls, model, task: Task, *, ablation: str = "resample", graph: CircuitGraph | None = None) -> EdgeEvaluator:
        graph = graph or CircuitGraph.of(model)
        return cls(model=model, task=task, graph=graph, ablation=ablation,
                   ablated=ablated_outputs(model, graph, task, ablation), metric_fn=task.metric_fn(model))

    def logits(
        self, masks: Float[Tensor, "*mask receiver sender"], *, grad: bool = False
    ) -> Float[Tensor, "rows d_vocab"]:
        """Answer-position logits with each mask's edges clean (1) or ablated (0); rows
        are ``mask × prompt``. Fractional masks interpolate; ``grad`` keeps the graph."""
        masks = self._check(masks) * self.graph.edge_grid.to(self.model.device)
        n = masks.shape[0]
        batch = self.task.clean
        ids, attention = batch.ids.repeat(n, 1), batch.attention_mask.repeat(n, 1)
        rows = torch.arange(ids.shape[0])
        with torch.set_grad_enabled(grad), edge_run(self.model, self.graph, masks=masks,
                                                    ablated=self.ablated):
            logits = self.model(ids.to(self.model.device), attention_mask=attention.to(self.model.device))
        return logits[rows, batch.last_positions().repeat(n)]

    def metrics(self, masks: Float[Tensor, "*mask receiver sender"], *, grad: bool = False) -> Float[Tensor, "mask"]:
        """The mean metric over prompts, per mask."""
        n = 1 if masks.dim() == 2 else masks.shape[0]
        return self.metric_fn(self.logits(masks, grad=grad)).view(n, -1).mean(1)

    def mask_gradient(self, mask: Float[Tensor, "receiver sender"], *, batch_size: int = 2
                      ) -> Float[Tensor, "receiver sender"]:
        """∂(mean metric)/∂mask at ``mask`` (0 where no edge exists), computed over
        ``batch_size`` prompts at a time: removing edge e changes the metric by about
        ``−gradient[e]``. At the full circuit this is minus EAP's scores. Memory: every
        receiver keeps its own attention copy with its autograd graph, about 0.8 GB per
        prompt of 14 tokens on smollm2-135m (measured), so keep batches small."""
        mask = self._check(mask)[0]
        grid = self.graph.edge_grid.to(mask)
        total = torch.zeros_like(mask)
        batch, n = self.task.clean, len(self.task)
        for start in range(0, n, batch_size):
            rows = slice(start, min(start + batch_size, n))
            leaf = mask.clone().requires_grad_(True)
            ablated = self.ablated[:, rows] if self.ablated.shape[1] > 1 else self.ablated
            metric = chunk_metric(self.model, self.task, rows)
            device = self.model.device
            with torch.enable_grad(), edge_run(self.model, self.graph, masks=(leaf * grid).unsqueeze(0), ablated=ablated):
                logits = self.model(batch.ids[rows].to(device), attention_mask=batch.attention_mask[rows].to(device))
                metric(at_answer(logits, batch.last_positions()[rows].to(device))).backward(inputs=[leaf])
            total += leaf.grad
        return total * grid

    def __call__(self, edges: Iterable[Edge]) -> float:
        """The metric with only ``edges`` clean (an ``Evaluate`` for faithfulness curves)."""
        return float(self.metrics(self.graph.mask(edges))[0])

    def complement(self, edges: Iterable[Edge]) -> float:
        """The metric with ``edges`` ablated and every other edge clean."""
        return float(self.metrics(self.graph.edge_grid - self.graph.mask(edges))[0])

    def _check(self, masks: Tensor) -> Tensor:
        shape = (len(self.graph.receivers), len(self.graph.senders))
        if masks.dim() == 2:
            masks = masks.unsqueeze(0)
        if masks.dim() != 3 or tuple(masks.shape[1:]) != shape:
            raise InputError(
                f"masks must be (receiver, sender) = {shape} grids, or a stack of them; received "
                f"{tuple(masks.shape)}. Build one with graph.mask(edges)"
            )
        return masks.float().to(self.model.device)
