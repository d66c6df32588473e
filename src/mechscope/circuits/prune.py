"""Shrinking a circuit by attribution at the circuit itself, not at the full model.

::

    start = Circuit.from_scores(graph, scores.as_dict(), budget=0.2, selection="greedy").edges
    edges = prune_circuit(evaluator, start, budget=0.05)      # 5% of the edges
    evaluator(edges)

EAP and EAP-IG score each edge by its effect when removed from the *full* model. Once
most edges are gone the picture changes: an edge that mattered little in the full model
may carry what its ablated neighbours no longer do. Pruning therefore works in rounds:
compute the metric's gradient with respect to the mask *at the current circuit*
(:meth:`EdgeEvaluator.mask_gradient`, one backward pass), drop the edges whose removal it
predicts to cost least, and repeat, keeping ``shrink`` of the edges each round, until
``budget`` is reached. It is first order like EAP, but re-linearised where the circuit
actually is (the idea of edge pruning by mask gradients; Bhaskar et al. 2024 optimise
such masks by gradient descent instead).
"""

from __future__ import annotations

from collections.abc import Iterable

from tqdm.auto import tqdm

from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.faithfulness import budget_edges
from mechscope.circuits.graph import Edge
from mechscope.errors import InputError


def prune_circuit(
    evaluator: EdgeEvaluator,
    edges: Iterable[Edge],
    *,
    budget: float,
    shrink: float = 0.7,
    batch_size: int = 2,
    progress: bool = True,
) -> frozenset[Edge]:
    """Shrink ``edges`` to ``budget`` (a fraction of the graph's edges) in rounds (module
    docstring). The task metric is taken as higher-is-better, except ``kl``."""
    if not 0 < shrink < 1:
        raise InputError(f"shrink is the fraction of edges each round keeps, in (0, 1); received {shrink!r}")
    graph = evaluator.graph
    kept = set(edges)
    target = budget_edges(graph.n_edges, budget)
    sign = -1.0 if evaluator.task.metric == "kl" else 1.0
    rounds = tqdm(desc="pruning", unit="round", disable=not progress)
    while len(kept) > target:
        gradient = evaluator.mask_gradient(graph.mask(kept), batch_size=batch_size).cpu()
        # removing e moves the metric by about −gradient[e]: keep the edges that would cost most
        cost = {e: sign * float(gradient[graph.grid_index(e)]) for e in kept}
        keep = max(target, int(len(kept) * shrink))
        kept = set(sorted(kept, key=lambda e: (-cost[e], e))[:keep])
        rounds.update()
    rounds.close()
    return frozenset(kept)
