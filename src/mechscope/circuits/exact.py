"""Exact edge scores: ablate each edge alone and measure the metric (the slow reference).

::

    evaluator = EdgeEvaluator.of(model, task, ablation="resample")
    scores = exact_edge_scores(evaluator)                  # EdgeScores, method "exact"
    contributions = edge_contributions(evaluator, circuit.edges)   # minimality

``score(r ← s) = m(every edge but r ← s) − m(every edge)``: what EAP estimates to first
order. One forward pass per edge, ``masks_per_pass`` of them side by side.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tqdm.auto import tqdm

from mechscope.circuits.attribution import EdgeScores
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.graph import Edge
from mechscope.errors import InputError


def exact_edge_scores(evaluator: EdgeEvaluator, *, masks_per_pass: int = 4, progress: bool = True) -> EdgeScores:
    """Each edge's effect when it alone is ablated from the full model."""
    graph = evaluator.graph
    full = graph.edge_grid
    effects = _without_each(evaluator, full, graph.edges, masks_per_pass, progress, "exact edge scores")
    return EdgeScores(graph=graph, grid=graph.to_grid(effects), method="exact", ablation=evaluator.ablation,
                      task=evaluator.task.name)


def edge_contributions(evaluator: EdgeEvaluator, edges: Iterable[Edge], *, within: Iterable[Edge] | None = None,
                       masks_per_pass: int = 4, progress: bool = True) -> dict[Edge, float]:
    """Minimality: for each edge of a circuit, m(C) − m(C without it). An edge whose
    contribution is about zero does nothing the rest of the circuit does not.

    The circuit C is ``within`` (``edges`` must belong to it), or ``edges`` themselves."""
    edges = sorted(set(edges))
    circuit_edges = set(edges) if within is None else set(within)
    if not circuit_edges >= set(edges):
        raise InputError(f"edge_contributions measures edges of the circuit; {len(set(edges) - circuit_edges)} "
                         f"of the edges given are not in it")
    circuit = evaluator.graph.mask(sorted(circuit_edges))
    effects = _without_each(evaluator, circuit, edges, masks_per_pass, progress, "edge contributions")
    return {edge: -value for edge, value in effects.items()}


def _without_each(evaluator, base, edges, masks_per_pass: int, progress: bool, what: str) -> dict[Edge, float]:
    """m(base without e) − m(base) for every e in ``edges``."""
    graph = evaluator.graph
    reference = float(evaluator.metrics(base)[0])
    effects: dict[Edge, float] = {}
    chunks = [edges[i:i + masks_per_pass] for i in range(0, len(edges), masks_per_pass)]
    for chunk in tqdm(chunks, desc=what, unit="pass", disable=not progress):
        masks = base.unsqueeze(0).repeat(len(chunk), 1, 1)
        for k, edge in enumerate(chunk):
            masks[(k, *graph.grid_index(edge))] = 0.0
        with torch.no_grad():
            values = evaluator.metrics(masks)
        effects.update({edge: float(v) - reference for edge, v in zip(chunk, values)})
    return effects
