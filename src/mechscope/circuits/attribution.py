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
from mechscope.circuits.evaluate import ablated_outputs, sender_outputs
from mechscope.circuits.graph import CircuitGraph, Edge
from mechscope.errors import InputError
from mechscope.patching.common import at_answer
from mechscope.results import Result
from mechscope.tasks.task import Task

METHODS = ("eap", "eap-ig-inputs", "eap-ig-activations")
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
    progress: bool = True,
) -> EdgeScores:
    """Score every edge of ``CircuitGraph.of(model)`` by EAP or EAP-IG (module docstring)."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; received {method!r}")
    if steps < 1:
        raise InputError(f"steps must be at least 1; received {steps}")
    graph = CircuitGraph.of(model)
    with torch.no_grad():
        delta = ablated_outputs(model, graph, task, ablation) - sender_outputs(model, graph, task.clean)
    scorer = _Scorer(model, task, graph, delta)
    if method == "eap":
        scorer.run(1.0)
    elif method == "eap-ig-inputs":
        for k in tqdm(range(1, steps + 1), desc="EAP-IG", unit="step", disable=not progress):
            # the input moves from ablated (α = 0) to clean (α = 1): clean + (1 − α)·(ablated − clean)
            scorer.run(1 / steps, overrides={("input", 0): _towards(delta[0], 1 - k / steps)})
    else:
        layout = Layout(graph)
        groups = [(("input", 0), slice(0, 1))]
        for layer in range(graph.n_layers):
            groups += [(("attn", layer), layout.head_senders(layer)),
                       (("mlp", layer), slice(layout.mlp_sender(layer), layout.mlp_sender(layer) + 1))]
        runs = [(g, k) for g in groups for k in range(1, steps + 1)]
        for (key, senders), k in tqdm(runs, desc="EAP-IG activations", unit="run", disable=not progress):
            shift = delta[senders].sum(0)
            scorer.run(1 / steps, overrides={key: _towards(shift, 1 - k / steps)}, senders=senders)
    grid = scorer.scores * graph.edge_grid.to(scorer.scores)
    return EdgeScores(graph=graph, grid=grid.cpu(), method=method, ablation=ablation, task=task.name)


def _towards(shift: Tensor, amount: float) -> Callable[[Tensor], Tensor]:
    return lambda output: output + amount * shift.to(output)


class _Scorer:
    """Accumulates ``weight · (ablated − clean)·∂m/∂x_r`` over backward passes."""

    def __init__(self, model, task: Task, graph: CircuitGraph, delta: Tensor):
        self.model, self.task, self.graph = model, task, graph
        batch, pos = task.clean.ids.shape
        self.delta = delta.expand(-1, batch, pos, -1)
        self.scores = torch.zeros(len(graph.receivers), len(graph.senders), device=model.device)
        grid = graph.edge_grid
        # senders before the last one feeding each receiver: the only columns worth computing
        self.upstream = [int(row.nonzero().max()) + 1 for row in grid]
        self.metric_fn = task.metric_fn(model)

    def run(self, weight: float, *, overrides=None, senders: slice = slice(None)) -> None:
        def on_grad(first: int, grad: Tensor) -> None:
            n = grad.shape[0]
            stop = max(self.upstream[first:first + n])
            columns = range(stop)[senders]
            if not columns:
                return
            cols = slice(columns.start, columns.stop)
            part = einsum(self.delta[cols].to(grad), grad,
                          "sender batch pos d_model, receiver batch pos d_model -> receiver sender")
            self.scores[first:first + n, cols] += weight * part.to(self.scores)

        clean = self.task.clean
        with torch.enable_grad(), edge_run(self.model, self.graph, on_grad=on_grad, overrides=overrides) as state:
            logits = self.model(clean)
            metric = self.metric_fn(at_answer(logits, clean.last_positions().to(logits.device))).mean()
            metric.backward(inputs=[state.leaf])  # no parameter gradients
