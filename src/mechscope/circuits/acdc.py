"""ACDC (Conmy et al. 2023): prune edges greedily, from the logits back to the input.

::

    result = acdc(model, task, threshold=0.01, metric="kl")
    result.circuit_edges, result.n_evaluations, result.scores

Starting from the full graph, receivers are visited in reverse topological order (the
logits first, then layer by layer down to layer 0; within a layer the MLP before the
heads' values, keys and queries); for each, its incoming edges are tried one at a time,
latest sender first. An edge is removed for good when removing it raises the loss by
less than ``threshold``:

* ``metric="kl"``: the loss is KL(full model ‖ current circuit) at the answer position,
  ACDC's default;
* ``metric="task"``: the loss is the drop in the task's own metric from the full model.

A receiver whose node no longer sends anything (every outgoing edge removed) cannot
matter: its incoming edges are removed without evaluation, as ACDC does for nodes cut
off from the output. Each edge's score is the loss increase measured when it was tried
(negated, in metric units like EAP's), so circuits at any budget can still be taken
from it; edges never tried score 0. One forward pass per tried edge: for small models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from mechscope.circuits.attribution import EdgeScores
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.graph import CircuitGraph, Edge, Node, Receiver
from mechscope.errors import InputError
from mechscope.results import Result
from mechscope.tasks.task import Task

ACDC_METRICS = ("kl", "task")


@dataclass(frozen=True)
class ACDCResult(Result):
    """The edges ACDC kept, and what it measured on the way."""

    circuit_edges: frozenset[Edge]
    """The edges left after pruning."""
    scores: EdgeScores
    """Per edge: −(loss increase when it was tried); 0 for edges removed untried."""
    threshold: float
    """Edges whose removal raised the loss by less than this were removed."""
    metric: str
    """``kl`` or ``task``: what the loss was."""
    n_evaluations: int
    """Forward passes spent."""


def acdc(model, task: Task, *, threshold: float, metric: str = "kl", ablation: str = "resample",
         progress: bool = True) -> ACDCResult:
    """Prune edges greedily in reverse topological order (module docstring)."""
    if metric not in ACDC_METRICS:
        raise InputError(f"ACDC's metric must be one of {', '.join(ACDC_METRICS)}; received {metric!r}")
    if not threshold >= 0:
        raise InputError(f"threshold must be a number >= 0; received {threshold!r}")
    evaluator = EdgeEvaluator.of(model, task.with_metric("kl") if metric == "kl" else task, ablation=ablation)
    graph = evaluator.graph
    sign = 1.0 if metric == "kl" else -1.0  # KL is already a loss; a task metric is higher-is-better
    mask = graph.edge_grid.clone()

    def loss() -> float:
        with torch.no_grad():
            return sign * float(evaluator.metrics(mask)[0])

    current = loss()
    scores = torch.zeros_like(mask)
    n_evaluations = 1
    by_receiver: dict[Receiver, list[Edge]] = {}
    for edge in graph.edges:
        by_receiver.setdefault(edge.receiver, []).append(edge)
    order = sorted(graph.receivers, key=_reverse_topological)
    for receiver in tqdm(order, desc="ACDC", unit="receiver", disable=not progress):
        if not _sends(graph, mask, receiver.node):
            for edge in by_receiver[receiver]:
                mask[graph.grid_index(edge)] = 0.0
            continue
        for edge in reversed(by_receiver[receiver]):
            index = graph.grid_index(edge)
            mask[index] = 0.0
            trial = loss()
            n_evaluations += 1
            scores[index] = -(trial - current)
            if trial - current < threshold:
                current = trial
            else:
                mask[index] = 1.0
    kept = frozenset(e for e in graph.edges if mask[graph.grid_index(e)] > 0)
    result_scores = EdgeScores(graph=graph, grid=scores, method="acdc", ablation=ablation, task=task.name)
    return ACDCResult(circuit_edges=kept, scores=result_scores, threshold=threshold, metric=metric,
                      n_evaluations=n_evaluations)


def _reverse_topological(receiver: Receiver) -> tuple:
    """Logits first, then each layer from the top: MLP, then values, keys, queries."""
    within = {None: 0, "v": 1, "k": 2, "q": 3}[receiver.input]
    return (-receiver.node.layer, -receiver.node.slot, within, receiver.node.index)


def _sends(graph: CircuitGraph, mask: torch.Tensor, node: Node) -> bool:
    """Whether ``node``'s output still reaches any receiver in the current circuit."""
    if node.kind == "logits":
        return True
    return any(bool(mask[:, graph.sender_index[h]].any()) for h in graph.heads_of(node))
