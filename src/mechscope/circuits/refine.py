"""Edges inside a small circuit: drop, one at a time, every edge the circuit does not need.

::

    circuit = discover_circuit(model, task, method="nodes")          # every edge among the chosen nodes
    edges = refine_edges(EdgeEvaluator.of(model, task), circuit.edges, threshold=0.01)

A circuit of nodes keeps every edge among them, also those that carry nothing. This is
ACDC's pruning (Conmy et al. 2023) over one circuit's edges instead of the whole graph:
edges are tried from the logits back (receivers in reverse order, latest sender first),
and an edge goes for good when removing it moves the task metric by less than
``threshold`` times the full model's effect ``|m(N) − m(∅)|`` from the current circuit's.
An edge whose removal would bring the circuit *closer* to the full model also goes
(ACDC keeps edges that lower its KL, removing only what costs nothing). One forward
pass per edge: for circuits of tens or hundreds of edges, not thousands.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tqdm.auto import tqdm

from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.graph import Edge
from mechscope.errors import InputError


def refine_edges(evaluator: EdgeEvaluator, edges: Iterable[Edge], *, threshold: float = 0.01,
                 progress: bool = True) -> frozenset[Edge]:
    """The edges of ``edges`` left after trying to remove each (module docstring)."""
    if not threshold > 0:
        raise InputError(f"threshold is a fraction of the full model's effect, > 0; received {threshold!r}")
    graph = evaluator.graph
    m_full, m_empty = evaluator(graph.edges), evaluator([])
    gap = abs(m_full - m_empty)
    kept = set(edges)
    mask = graph.mask(kept)

    def metric() -> float:
        with torch.no_grad():
            return float(evaluator.metrics(mask)[0])

    current = metric()
    for edge in tqdm(sorted(kept, reverse=True), desc="refining edges", unit="edge", disable=not progress):
        index = graph.grid_index(edge)
        mask[index] = 0.0
        trial = metric()
        if abs(trial - current) < threshold * gap or abs(trial - m_full) < abs(current - m_full):
            kept.discard(edge)
            current = trial
        else:
            mask[index] = 1.0
    return frozenset(kept)
