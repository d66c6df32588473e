"""How much of a behaviour a circuit carries: faithfulness, its curve over edge budgets, CPR and CMD.

::

    curve = faithfulness_curve(evaluate, graph, scores)      # evaluate(edges) -> the task metric
    curve.faithfulness, curve.cpr, curve.cmd

Faithfulness of a circuit C (Wang et al. 2022; Hanna et al. 2024):

    f(C) = (m(C) − m(∅)) / (m(N) − m(∅))

with m the task metric when only C's edges carry clean activations (every other edge
ablated), ∅ the empty circuit (every edge ablated) and N the full model (none). 1 means
the circuit does all the model does; 0 no more than nothing.

The **faithfulness curve** evaluates the circuits made of the top-scoring edges at each
budget of :data:`BUDGETS` (fractions of all edges, at least one edge each).
**CPR** is the area under f and **CMD** the area under |1 − f|, both by the trapezoidal
rule over the budgets divided by the largest (the MIB circuit track's ``area_under`` and
``area_from_1``; Mueller et al. 2025): higher CPR, lower CMD is better. Like MIB, CPR is
meant for circuits chosen by signed scores and CMD for circuits chosen by absolute
scores: pass ``absolute`` accordingly.

**Signs.** Edge scores here (EAP, EAP-IG, exact) are the change in the metric when the
edge is ablated, so the edges that carry a higher-is-better metric score *negative*.
The signed ranking (``absolute=False``) therefore puts the most negative scores first:
the edges whose loss costs the metric most (MIB, which scores with a loss, puts the
most positive first: the same edges). For a lower-is-better metric (KL), negate the
scores before ranking.

Circuits are chosen from scores in one of two ways (``selection``):

* ``top``: the k highest-scoring edges, nothing more. Edges left dangling (whose
  sender no kept edge reads, or which nothing clean reaches) are kept and spend budget
  on nothing: under resample ablation a sender none of whose inputs is kept outputs
  exactly its ablated value.
* ``greedy`` (MIB's and the EAP-IG code's ``apply_greedy``): grow the circuit from the
  logits, each time adding the best-scoring edge into a node already in the circuit,
  so every kept edge leads to the logits.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from tqdm.auto import tqdm

from mechscope.circuits.graph import CircuitGraph, Edge
from mechscope.errors import InputError
from mechscope.results import Result

BUDGETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Fractions of the graph's edges at which the faithfulness curve is evaluated."""

Evaluate = Callable[[frozenset[Edge]], float]
"""``evaluate(edges) -> m``: the task metric with only ``edges`` left clean."""


def faithfulness(m_circuit: float, m_empty: float, m_full: float) -> float:
    """(m(C) − m(∅)) / (m(N) − m(∅)); refused when the full model and the empty circuit agree."""
    gap = m_full - m_empty
    if not math.isfinite(gap) or abs(gap) < 1e-12 * max(1.0, abs(m_full)):
        raise InputError(
            f"faithfulness is undefined: the full model's metric ({m_full:.6g}) equals the empty circuit's "
            f"({m_empty:.6g}); the ablation removes nothing this metric sees — use another ablation or task"
        )
    return (m_circuit - m_empty) / gap


def area_under(budgets: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoidal area under ``values`` over ``budgets`` divided by the last budget (MIB's)."""
    if len(budgets) != len(values) or len(budgets) < 2:
        raise InputError(f"need as many values as budgets, at least two; received {len(values)} and {len(budgets)}")
    if any(b <= a for a, b in zip(budgets, budgets[1:])):
        raise InputError(f"budgets must increase; received {list(budgets)}")
    top = budgets[-1]
    return sum((b - a) / top * (u + v) / 2 for a, b, u, v in zip(budgets, budgets[1:], values, values[1:]))


def top_edges(scores: Mapping[Edge, float], k: int, *, absolute: bool = True) -> frozenset[Edge]:
    """The ``k`` edges with the largest absolute scores, or (signed) the most negative:
    those whose ablation lowers the metric most (see Signs above); ties by edge order."""
    key = (lambda e: (-abs(scores[e]), e)) if absolute else (lambda e: (scores[e], e))
    return frozenset(sorted(scores, key=key)[:k])


def greedy_edges(graph: CircuitGraph, scores: Mapping[Edge, float], k: int, *,
                 absolute: bool = True) -> frozenset[Edge]:
    """``k`` edges grown from the logits: each step adds the best edge whose receiver's
    node already sends into the circuit (a key/value head does when any of its query
    heads does). Fewer than ``k`` if the reachable edges run out."""
    value = (lambda e: abs(scores[e])) if absolute else (lambda e: -scores[e])
    into: dict[object, list[Edge]] = {}
    for edge in graph.edges:
        for owner in graph.heads_of(edge.receiver.node):
            into.setdefault(owner, []).append(edge)
    chosen: set[Edge] = set()
    active: set[object] = set()
    heap: list = []

    def activate(node) -> None:
        if node in active:
            return
        active.add(node)
        for edge in into.get(node, ()):
            heapq.heappush(heap, (-value(edge), edge))

    activate(graph.receivers[-1].node)  # the logits
    while heap and len(chosen) < k:
        _, edge = heapq.heappop(heap)
        if edge in chosen:
            continue
        chosen.add(edge)
        activate(edge.sender)
    return frozenset(chosen)


SELECTIONS = ("top", "greedy")
"""How a circuit of k edges is chosen from scores (module docstring)."""


def select_edges(graph: CircuitGraph, scores: Mapping[Edge, float], k: int, *, absolute: bool = True,
                 selection: str = "top") -> frozenset[Edge]:
    if selection not in SELECTIONS:
        raise InputError(f"selection must be one of {', '.join(SELECTIONS)}; received {selection!r}")
    if selection == "greedy":
        return greedy_edges(graph, scores, k, absolute=absolute)
    return top_edges(scores, k, absolute=absolute)


def budget_edges(n_edges: int, budget: float) -> int:
    """Edges in a circuit of ``budget`` (a fraction in (0, 1]) of ``n_edges``: at least one."""
    if not 0 < budget <= 1:
        raise InputError(f"a budget is a fraction of the edges in (0, 1]; received {budget!r}")
    return max(1, min(n_edges, round(budget * n_edges)))


@dataclass(frozen=True)
class FaithfulnessCurve(Result):
    """Faithfulness of the top-scoring circuits at each edge budget."""

    budgets: tuple[float, ...]
    """Fractions of the edges."""
    n_edges: tuple[int, ...]
    """Edges in the circuit at each budget."""
    metric: tuple[float, ...]
    """The task metric of each circuit."""
    faithfulness: tuple[float, ...]
    """f of each circuit."""
    m_full: float
    """The metric of the full model."""
    m_empty: float
    """The metric of the empty circuit."""
    cpr: float
    """Area under f (higher is better)."""
    cmd: float
    """Area under |1 − f| (lower is better)."""
    absolute: bool
    """Whether edges were ranked by absolute score."""
    selection: str = "top"
    """How each circuit was chosen from the scores (``top`` or ``greedy``)."""

    def smallest_budget(self, at_least: float) -> float | None:
        """The smallest budget whose circuit reaches faithfulness ``at_least``, if any."""
        return next((b for b, f in zip(self.budgets, self.faithfulness) if f >= at_least), None)

    def plot(self, *others: tuple[str, FaithfulnessCurve], title: str = "",
             marks: Sequence[tuple[str, float, float]] = ()) -> Figure:
        """f against the fraction of edges kept (log scale), with the band 0.8 ≤ f ≤ 1.2 shaded.

        ``others`` adds curves as (label, curve); ``marks`` adds points (label, fraction, f),
        e.g. the chosen circuit on held-out prompts."""
        figure = Figure(figsize=(6.4, 3.6), layout="constrained")
        axes = figure.add_subplot()
        axes.axhspan(0.8, 1.2, color="#dcfce7", zorder=0, label="0.8 ≤ f ≤ 1.2")
        axes.axhline(1.0, color="#16a34a", linewidth=0.8)
        axes.axhline(0.0, color="#94a3b8", linewidth=0.8)
        curves = [(f"{'|score|' if self.absolute else 'signed score'}, {self.selection}", self), *others]
        for label, curve in curves:
            axes.plot(curve.budgets, curve.faithfulness, marker="o", markersize=3.5, label=label)
        for label, fraction, value in marks:
            axes.plot([fraction], [value], marker="*", markersize=12, linestyle="none", label=label)
        axes.set_xscale("log")
        axes.set_xlabel("fraction of edges kept")
        axes.set_ylabel("faithfulness f")
        axes.set_title(title or "faithfulness over edge budgets", fontsize=10, loc="left")
        axes.legend(fontsize=8, loc="best")
        return figure


def faithfulness_curve(
    evaluate: Evaluate,
    graph: CircuitGraph,
    scores: Mapping[Edge, float],
    *,
    budgets: Iterable[float] = BUDGETS,
    absolute: bool = True,
    selection: str = "top",
    baselines: tuple[float, float] | None = None,
    progress: bool = True,
) -> FaithfulnessCurve:
    """Evaluate the top-scoring circuit at each budget (plus the full model and the empty
    circuit, unless their metrics are given as ``baselines = (m_full, m_empty)``)."""
    budgets = tuple(budgets)
    missing = len(graph.edges) - sum(1 for e in graph.edges if e in scores)
    if missing:
        raise InputError(f"scores must cover every edge of the graph; {missing} of {graph.n_edges} have none")
    counts = tuple(budget_edges(graph.n_edges, b) for b in budgets)
    m_full, m_empty = baselines or (evaluate(frozenset(graph.edges)), evaluate(frozenset()))
    metric = tuple(
        m_full if k == graph.n_edges else evaluate(select_edges(graph, scores, k, absolute=absolute, selection=selection))
        for k in tqdm(counts, desc="faithfulness curve", unit="circuit", disable=not progress)
    )
    f = tuple(faithfulness(m, m_empty, m_full) for m in metric)
    return FaithfulnessCurve(
        budgets=budgets, n_edges=counts, metric=metric, faithfulness=f, m_full=m_full, m_empty=m_empty,
        cpr=area_under(budgets, f), cmd=area_under(budgets, [abs(1 - v) for v in f]),
        absolute=absolute, selection=selection,
    )
