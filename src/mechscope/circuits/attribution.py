"""Scoring every edge at once with gradients: EAP and EAP-IG.

::

    scores = edge_attribution_patching(model, task, method="eap-ig-inputs", steps=5)
    scores.top(10)                          # [(Edge, score), …] by |score|
    Circuit.from_scores(scores.graph, scores.as_dict(), budget=0.05)

**EAP** (Syed et al. 2023) estimates what ablating edge ``r ← s`` does to the metric by
a first-order expansion around the clean run:

    score(r ← s) = (ablated_s − clean_s) · ∂m/∂x_r

with ``x_r`` the receiver's own input. That is exactly ``−∂m/∂mask[r, s]`` of the
circuit evaluator at the full circuit (tests check it); one forward and one backward
pass score every edge.

**EAP-IG on inputs** (Hanna et al. 2024) averages the gradient over ``steps`` runs whose
input embeddings are interpolated from the ablated (corrupted) to the clean input,
α = k/steps for k = 1 … steps (so one step is EAP; Hanna et al.'s code takes
k = 0 … steps − 1). **EAP-IG on activations** (as in the MIB benchmark) interpolates
instead the output of one sender group at a time — the input, a layer's attention, a
layer's MLP — and scores that group's edges with the gradients of those runs:
``steps × (2·n_layers + 1)`` passes.

Scores are in metric units: the predicted change in the mean metric when the edge alone
is ablated (negative for an edge that helps a metric that is higher-is-better).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.circuits.edge_run import Layout, edge_run
from mechscope.circuits.evaluate import ablated_outputs, chunk_metric, sender_outputs
from mechscope.circuits.graph import CircuitGraph, Edge
from mechscope.errors import InputError
from mechscope.results import Checkpoint, Result, no_checkpoint
from mechscope.tasks.task import Task, at_answer

EDGE_ATTRIBUTION_METHODS = ("eap", "eap-ig-inputs", "eap-ig-activations")
"""Gradient-based edge scores :func:`edge_attribution_patching` computes."""


@dataclass(frozen=True)
class EdgeScores(Result):
    """A score for every edge of a graph."""

    graph: CircuitGraph
    grid: Float[Tensor, "receiver sender"]
    """Scores on the (receiver, sender) grid; 0 where no edge exists."""
    method: str
    """``eap``, ``eap-ig-inputs``, ``eap-ig-activations``, ``exact`` or ``acdc``."""
    ablation: str
    """What an ablated edge carries (``resample``, ``mean``, ``zero``)."""
    task: str = ""

    def as_dict(self) -> dict[Edge, float]:
        return self.graph.to_scores(self.grid)

    def top(self, k: int, *, absolute: bool = True) -> list[tuple[Edge, float]]:
        scores = self.as_dict()
        key = (lambda e: -abs(scores[e])) if absolute else (lambda e: -scores[e])
        return [(e, scores[e]) for e in sorted(scores, key=key)[:k]]

    def to_dict(self) -> dict:
        return {"type": "EdgeScores", "method": self.method, "ablation": self.ablation, "task": self.task,
                "scores": {e.name: s for e, s in self.as_dict().items()}}


def edge_attribution_patching(
    model,
    task: Task,
    *,
    method: str = "eap-ig-inputs",
    ablation: str = "resample",
    steps: int = 5,
    batch_size: int = 8,
    checkpoint: Checkpoint = no_checkpoint,
    progress: bool = True,
) -> EdgeScores:
    """Score every edge of ``CircuitGraph.of(model)`` by EAP or EAP-IG (module docstring).

    ``batch_size`` prompts run per backward pass (scores are sums over prompts, so this
    only bounds memory: each prompt costs about ``n_heads + 2·n_kv_heads`` copies of
    attention activations per layer). Each batch's scores, summed over all its runs,
    pass through ``checkpoint`` (``"prompts 0-7"``), so that an interrupted scoring can
    continue from the batches it finished (:data:`mechscope.results.Checkpoint`)."""
    if method not in EDGE_ATTRIBUTION_METHODS:
        raise InputError(f"method must be one of {', '.join(EDGE_ATTRIBUTION_METHODS)}; received {method!r}")
    if steps < 1 or batch_size < 1:
        raise InputError(f"steps and batch_size must be at least 1; received {steps} and {batch_size}")
    graph = CircuitGraph.of(model)
    with torch.no_grad():
        delta = ablated_outputs(model, graph, task, ablation) - sender_outputs(model, graph, task.clean)
    scorer = _Scorer(model, task, graph, delta, batch_size)
    if method == "eap":
        steps = 1
        runs = [(None, slice(None))]  # one clean run, every column
    else:
        groups = [(("input", 0), slice(0, 1))]
        if method == "eap-ig-activations":
            layout = Layout(graph)
            for layer in range(graph.n_layers):
                mlp = layout.mlp_sender(layer)
                groups += [(("attn", layer), layout.head_senders(layer)), (("mlp", layer), slice(mlp, mlp + 1))]
        # the group's output moves from ablated (α = 0) to clean (α = 1): clean + (1 − α)·(ablated − clean);
        # on inputs every column takes the gradients, on activations only the interpolated group's
        runs = [((key, senders, 1 - k / steps), senders if method == "eap-ig-activations" else slice(None))
                for key, senders in groups for k in range(1, steps + 1)]
    bar = tqdm(total=len(runs) * len(scorer.chunks), desc=method, unit="run",
               disable=not progress or len(runs) * len(scorer.chunks) == 1)
    scores = torch.zeros(len(graph.receivers), len(graph.senders))
    for done, (rows, metric_fn) in enumerate(zip(scorer.chunks, scorer.metrics), start=1):
        scores += checkpoint(f"prompts {rows.start}-{rows.stop - 1}",
                             lambda: scorer.score(rows, metric_fn, runs, 1 / steps, bar))
        bar.n = done * len(runs)  # a batch kept from an earlier run counts too
        bar.refresh()
    bar.close()
    grid = scores * graph.edge_grid.to(scores)
    return EdgeScores(graph=graph, grid=grid, method=method, ablation=ablation, task=task.name)


class _Scorer:
    """Sums ``weight · (ablated − clean)·∂m/∂x_r`` over backward passes."""

    def __init__(self, model, task: Task, graph: CircuitGraph, delta: Tensor, batch_size: int):
        self.model, self.graph = model, graph
        batch, pos = task.clean.ids.shape
        self.delta = delta.expand(-1, batch, pos, -1)
        # senders up to the last one feeding each receiver: the only columns worth computing
        self.upstream = [int(row.nonzero().max()) + 1 for row in graph.edge_grid]
        self.chunks = [slice(i, min(i + batch_size, batch)) for i in range(0, batch, batch_size)]
        self.metrics = [chunk_metric(model, task, rows) for rows in self.chunks]
        self.task = task

    def score(self, rows: slice, metric_fn, runs: list, weight: float, bar) -> Tensor:
        """The scores from the prompts ``rows``, summed over ``runs`` ((interpolate, senders) each)."""
        scores = torch.zeros(len(self.graph.receivers), len(self.graph.senders), device=self.model.device)
        delta = self.delta[:, rows]
        for interpolate, senders in runs:
            overrides = None
            if interpolate is not None:
                key, group, amount = interpolate
                overrides = {key: _towards(delta[group].sum(0), amount)}
            self._backward(self.task.clean, rows, delta, metric_fn, weight, overrides, senders, scores)
            bar.update()
        return scores.cpu()

    def _backward(self, batch, rows, delta, metric_fn, weight, overrides, senders, scores: Tensor) -> None:
        def on_grad(first: int, grad: Tensor) -> None:
            n = grad.shape[0]
            stop = max(self.upstream[first:first + n])
            columns = range(stop)[senders]
            if not columns:
                return
            cols = slice(columns.start, columns.stop)
            part = einsum(delta[cols].to(grad), grad,
                          "sender batch pos d_model, receiver batch pos d_model -> receiver sender")
            scores[first:first + n, cols] += weight * part.to(scores)

        ids, attention = batch.ids[rows].to(self.model.device), batch.attention_mask[rows].to(self.model.device)
        with torch.enable_grad(), edge_run(self.model, self.graph, on_grad=on_grad, overrides=overrides) as state:
            logits = self.model(ids, attention_mask=attention)
            metric = metric_fn(at_answer(logits, batch.last_positions()[rows].to(logits.device)))
            metric.backward(inputs=[state.leaf])  # no parameter gradients


def _towards(shift: Tensor, amount: float) -> Callable[[Tensor], Tensor]:
    return lambda output: output + amount * shift.to(output)
