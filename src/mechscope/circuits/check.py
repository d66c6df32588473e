"""Is a circuit faithful, complete, minimal, and does it hold on prompts it was not found on?

::

    check = check_circuit(model, circuit.edges, discovery=split.discovery, heldout=split.heldout)
    check.f_discovery, check.f_heldout, check.complement_f, check.minimality

* **faithful**: f(C) close to 1 on the discovery prompts, and on held-out prompts (other
  templates and names) — "close to 1", not "large": f = 2 means the circuit leaves out
  edges that work against the answer, and doubles the behaviour;
* **complete**: the complement N∖C alone does little (f near 0);
* **minimal**: each of the circuit's edges matters — the fraction of the full effect
  lost when one edge is removed from the circuit (exact, one evaluation per edge, for the
  strongest and the weakest edges by score).

All measurements use the same ablation (resample by default: each removed edge carries
its value on the paired corrupted prompt), with f = (m(C) − m(∅)) / (m(N) − m(∅)) on
each prompt set's own m(N) and m(∅).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.exact import edge_contributions
from mechscope.circuits.faithfulness import faithfulness
from mechscope.circuits.graph import Edge
from mechscope.results import Result
from mechscope.tasks.task import Task

OVERSHOOT = 1.2
"""f above this is flagged: the circuit amplifies the behaviour instead of reproducing it."""


@dataclass(frozen=True, kw_only=True)
class CircuitCheck(Result):
    """A circuit's faithfulness on discovery and held-out prompts, completeness and minimality."""

    n_edges: int
    """Edges in the circuit."""
    fraction: float
    """Its share of the graph's edges."""
    ablation: str
    """What a removed edge carries."""
    f_discovery: float
    """f(C) on the discovery prompts."""
    f_heldout: float
    """f(C) on the held-out prompts."""
    complement_f: float
    """f(N∖C) on the discovery prompts: near 0 when the circuit holds everything."""
    m_full: tuple[float, float]
    """The metric of the full model, (discovery, held out)."""
    m_empty: tuple[float, float]
    """The metric with every edge ablated, (discovery, held out)."""
    minimality: dict[str, float]
    """For the strongest and weakest edges by score: the fraction of m(N) − m(∅) lost when
    that one edge is removed from the circuit (discovery prompts)."""

    @property
    def heldout_error(self) -> float:
        """|1 − f| on held-out prompts: how far from reproducing the behaviour there."""
        return abs(1 - self.f_heldout)

    @property
    def overshoots(self) -> bool:
        """f above :data:`OVERSHOOT` on either prompt set."""
        return max(self.f_discovery, self.f_heldout) > OVERSHOOT


def check_circuit(model, edges: Iterable[Edge], *, discovery: Task, heldout: Task, ablation: str = "resample",
                  scores: Mapping[Edge, float] | None = None, minimality: int = 8,
                  evaluator: EdgeEvaluator | None = None, progress: bool = False) -> CircuitCheck:
    """Measure the circuit ``edges`` (see the module docstring). ``evaluator`` reuses a
    discovery evaluator already built; ``minimality`` edges from each end of the score
    ranking (all of the circuit's if it has fewer) are removed one at a time."""
    edges = frozenset(edges)
    on_discovery = evaluator or EdgeEvaluator.of(model, discovery, ablation=ablation)
    graph = on_discovery.graph
    full_d, empty_d = on_discovery(graph.edges), on_discovery(frozenset())
    on_heldout = EdgeEvaluator.of(model, heldout, ablation=ablation)
    full_h, empty_h = on_heldout(graph.edges), on_heldout(frozenset())
    ranked = sorted(edges, key=lambda e: -abs((scores or {}).get(e, 0.0)))
    probe = list(dict.fromkeys(ranked[:minimality] + ranked[::-1][:minimality]))
    lost = edge_contributions(on_discovery, probe, within=edges, progress=progress) if probe else {}
    gap = full_d - empty_d
    return CircuitCheck(
        n_edges=len(edges), fraction=len(edges) / graph.n_edges, ablation=on_discovery.ablation,
        f_discovery=faithfulness(on_discovery(edges), empty_d, full_d),
        f_heldout=faithfulness(on_heldout(edges), empty_h, full_h),
        complement_f=faithfulness(on_discovery.complement(edges), empty_d, full_d),
        m_full=(full_d, full_h), m_empty=(empty_d, empty_h),
        minimality={e.name: (lost[e] / gap if gap else float("nan")) for e in probe},
    )

