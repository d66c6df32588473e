"""Circuit discovery in one call: a method scores the edges, a rule picks the circuit.

::

    circuit = discover_circuit(model, task)                                  # the recommended procedure
    circuit = discover_circuit(model, task, method="eap-ig", budget=0.05)   # the 5% best edges by EAP-IG
    circuit = discover_circuit(model, task, method="acdc", threshold=0.01)  # what ACDC keeps
    circuit.edges, circuit.scores

Every method in :data:`CIRCUIT_METHODS` is a scorer with one signature,
``scorer(model, task, *, ablation, steps, threshold, progress) -> EdgeScores`` (as
auto-circuit's ``prune_algos``), so a method is picked by name, never by an if-chain.
Its circuit is then cut from the ranked scores (``selection``):

* ``faithful`` (when no budget is given): the smallest circuit, within ``budget``
  (default 5% of the edges), whose faithfulness is within ``tolerance`` of 1
  (:mod:`~mechscope.circuits.sizing`), measured on ``validation`` prompts if given;
* ``top`` / ``greedy`` (when a budget is given): exactly ``budget`` of the edges;
* ``threshold``: every edge whose ablation moves the metric by at least that much
  (ACDC: every edge it kept, whose ablation raised the KL by at least ``threshold``).

Edges are ranked by signed score unless ``absolute=True``: the edges whose ablation
hurts the behaviour most come first (for EAP, whose signs are unreliable, pass
``absolute=True``).

**The recommended procedure** (the defaults, :data:`DEFAULT_METHOD`): score heads and
MLPs by integrated gradients (``nodes``, 5 steps; :mod:`~mechscope.circuits.nodes`), rank
them by signed score, and keep every edge among the smallest set of top nodes whose
circuit has f within 0.1 of 1. On smollm2-135m IOI (``benchmarks/circuit_holdout.py``)
it is the candidate whose circuits hold out of sample: node circuits sized this way keep
f near 1 on held-out templates and names, where the best edge-level circuits at the same
size do not, and it costs plain-model passes only (no per-receiver copies).

**Signs.** A score is the change in the metric when the edge is ablated, so the edges
that carry a higher-is-better metric score negative, and the signed ranking takes the
most negative first. For a lower-is-better metric (``kl``) that ranking is of −score
(:func:`oriented`). ACDC's and the node method's scores are already oriented (negative
for an edge that matters) whatever the metric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from tqdm.auto import tqdm

from mechscope.circuits.acdc import acdc
from mechscope.circuits.attribution import EdgeScores, edge_attribution_patching
from mechscope.circuits.circuit import Circuit
from mechscope.ablations import check_ablation
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.exact import exact_edge_scores
from mechscope.circuits.faithfulness import budget_edges, faithfulness, select_edges
from mechscope.circuits.graph import INPUT, CircuitGraph, Edge
from mechscope.circuits.node_masks import NodeEvaluator
from mechscope.circuits.nodes import node_attribution, node_edge_scores, node_edges
from mechscope.circuits.sizing import smallest_faithful
from mechscope.errors import InputError
from mechscope.tasks.task import Task

Scorer = Callable[..., EdgeScores]
"""``scorer(model, task, *, ablation, steps, threshold, progress) -> EdgeScores``."""

LOWER_IS_BETTER = frozenset({"kl"})
"""Task metrics for which a smaller value means more of the behaviour."""


def _eap(model, task: Task, *, ablation: str, steps: int, threshold: float | None, progress: bool) -> EdgeScores:
    return edge_attribution_patching(model, task, method="eap", ablation=ablation, progress=progress)


def _eap_ig(model, task: Task, *, ablation: str, steps: int, threshold: float | None, progress: bool) -> EdgeScores:
    return edge_attribution_patching(model, task, method="eap-ig-inputs", ablation=ablation, steps=steps,
                                     progress=progress)


def _eap_ig_activations(model, task: Task, *, ablation: str, steps: int, threshold: float | None,
                        progress: bool) -> EdgeScores:
    return edge_attribution_patching(model, task, method="eap-ig-activations", ablation=ablation, steps=steps,
                                     progress=progress)


def _exact(model, task: Task, *, ablation: str, steps: int, threshold: float | None, progress: bool) -> EdgeScores:
    return exact_edge_scores(EdgeEvaluator.of(model, task, ablation=ablation), progress=progress)


def _acdc(model, task: Task, *, ablation: str, steps: int, threshold: float | None, progress: bool) -> EdgeScores:
    return acdc(model, task, threshold=DEFAULT_THRESHOLD if threshold is None else threshold, metric="kl",
                ablation=ablation, progress=progress).scores


def _nodes(model, task: Task, *, ablation: str, steps: int, threshold: float | None, progress: bool) -> EdgeScores:
    scores = node_attribution(model, task, ablation=ablation, steps=steps, progress=progress)
    return node_edge_scores(scores, lower_is_better=task.metric in LOWER_IS_BETTER)


CIRCUIT_METHODS: dict[str, Scorer] = {
    "eap": _eap,
    "eap-ig": _eap_ig,
    "eap-ig-activations": _eap_ig_activations,
    "exact": _exact,
    "acdc": _acdc,
    "nodes": _nodes,
}
"""Edge scorers by name. ``eap-ig`` is EAP-IG on inputs; ``nodes`` scores heads and
MLPs and gives each edge the smaller |score| of its two ends, so that a budget keeps
every edge among the best nodes (:mod:`~mechscope.circuits.nodes`)."""

INTEGRATED = frozenset({"eap-ig", "eap-ig-activations", "nodes"})
"""Methods that take integration ``steps``."""
ORIENTED = frozenset({"acdc", "nodes"})
"""Methods whose scores are negative for an edge that matters whatever the task's metric."""
DEFAULT_METHOD = "nodes"
"""The recommended procedure: heads and MLPs by integrated gradients, the smallest faithful circuit."""
DEFAULT_BUDGET = 0.05
"""The most edges a circuit takes (a fraction), unless a budget is given."""
SELECTIONS = ("faithful", "top", "greedy")
"""How a circuit is cut from ranked edges: smallest faithful, top-k, or top-k grown from the logits."""
DEFAULT_STEPS = 5
DEFAULT_THRESHOLD = 0.01
"""ACDC's default: prune an edge whose removal raises the KL by less (nats)."""


def oriented(scores: Mapping[Edge, float], task: Task, method: str) -> dict[Edge, float]:
    """Scores whose most negative edge is the one whose ablation hurts the behaviour most
    (the signed ranking's order): negated for a lower-is-better metric, unless the method's
    scores are oriented already."""
    flip = task.metric in LOWER_IS_BETTER and method not in ORIENTED
    return {e: -v for e, v in scores.items()} if flip else dict(scores)


def discover_circuit(
    model,
    task: Task,
    *,
    method: str = DEFAULT_METHOD,
    budget: float | None = None,
    threshold: float | None = None,
    ablation: str = "resample",
    steps: int | None = None,
    selection: str | None = None,
    absolute: bool = False,
    tolerance: float = 0.1,
    validation: Task | None = None,
    progress: bool = True,
) -> Circuit:
    """Score every edge with ``method``, then keep a circuit of them (module docstring).

    With no ``budget`` and no ``threshold`` the circuit is the smallest faithful one
    within :data:`DEFAULT_BUDGET` (``selection="faithful"``; ACDC keeps what its default
    threshold leaves); with a ``budget`` it is that many edges (``top`` or ``greedy``),
    or, with ``selection="faithful"``, the smallest faithful one within it. Faithfulness
    is measured on ``validation`` prompts if given, else on the task's own."""
    check_options(method, budget=budget, threshold=threshold, ablation=ablation, steps=steps)
    if selection is None:
        selection = "faithful" if budget is None and threshold is None and method != "acdc" else "top"
    if selection not in SELECTIONS:
        raise InputError(f"selection must be one of {', '.join(SELECTIONS)}; received {selection!r}")
    scores = CIRCUIT_METHODS[method](model, task, ablation=ablation, steps=DEFAULT_STEPS if steps is None else steps,
                                     threshold=threshold, progress=progress)
    ranked = oriented(scores.as_dict(), task, method)
    graph = scores.graph
    if threshold is not None or method == "acdc":
        limit = DEFAULT_THRESHOLD if threshold is None else threshold
        # ACDC kept exactly the edges whose removal raised its loss by the threshold: signed
        size = (lambda v: abs(v)) if absolute and method not in ORIENTED else (lambda v: -v)
        edges = frozenset(e for e, v in ranked.items() if size(v) >= limit)
    elif selection == "faithful":
        edges = faithful_edges(model, validation or task, ranked, budget=budget or DEFAULT_BUDGET, absolute=absolute,
                               ablation=ablation, tolerance=tolerance, progress=progress)
    else:
        k = budget_edges(graph.n_edges, budget or DEFAULT_BUDGET)
        edges = select_edges(graph, ranked, k, absolute=absolute, selection=selection)
    return Circuit(graph=graph, edges=edges, scores=scores.as_dict(), method=method, model_name=model.name)


def faithful_edges(model, task: Task, scores: Mapping[Edge, float], *, budget: float, absolute: bool = False,
                   ablation: str = "resample", tolerance: float = 0.1, progress: bool = True,
                   evaluator: EdgeEvaluator | None = None) -> frozenset[Edge]:
    """The smallest circuit of top-scoring edges, within ``budget``, whose faithfulness on
    ``task`` is within ``tolerance`` of 1 (:func:`~mechscope.circuits.sizing.smallest_faithful`).
    ``scores`` are oriented (most negative first under the signed ranking). Candidates
    are cut where the score changes, so that node-derived scores give node-induced
    circuits, which are evaluated in the plain model (:class:`NodeEvaluator`); other
    circuits by ``evaluator`` (an :class:`EdgeEvaluator` of ``task`` already built), else
    one built when first needed."""
    graph = CircuitGraph.of(model)
    key = (lambda e: -abs(scores[e])) if absolute else (lambda e: scores[e])
    order = sorted(scores, key=lambda e: (key(e), e))
    limit = budget_edges(graph.n_edges, budget)
    sizes = [k for k in range(1, min(limit, len(order)) + 1) if k == len(order) or key(order[k - 1]) != key(order[k])]
    if not sizes:
        raise InputError(f"no circuit of tied top scores fits the budget {budget} ({limit} edges); raise the budget")
    evaluate = _Evaluate(model, task, graph, ablation, edges=evaluator)
    m_full, m_empty = evaluate.baselines()

    def f_at(rung: int) -> float:
        return faithfulness(evaluate(frozenset(order[:sizes[rung - 1]])), m_empty, m_full)

    bar = tqdm(desc="sizing the circuit", unit="circuit", disable=not progress)
    choice = smallest_faithful(lambda rung: (bar.update(), f_at(rung))[1], len(sizes), tolerance=tolerance,
                               resolution=max(1, len(sizes) // 64))
    bar.close()
    return frozenset(order[:sizes[choice.size - 1]])


class _Evaluate:
    """The metric of a circuit: in the plain model (:class:`NodeEvaluator`) when it is
    the circuit some nodes induce and the model has no norm after its heads' sum, else
    edge by edge (:class:`EdgeEvaluator`). Each evaluator is built when first needed."""

    def __init__(self, model, task: Task, graph: CircuitGraph, ablation: str, *, edges: EdgeEvaluator | None = None):
        self.model, self.task, self.graph, self.ablation = model, task, graph, ablation
        self._nodes: NodeEvaluator | None = None
        self._edges = edges

    def nodes(self) -> NodeEvaluator:
        if self._nodes is None:
            self._nodes = NodeEvaluator.of(self.model, self.task, ablation=self.ablation)
        return self._nodes

    def baselines(self) -> tuple[float, float]:
        """(m(N), m(∅)): every node kept, every node (the input too) ablated."""
        evaluator = self.nodes()
        full = evaluator.mask(self.graph.senders[1:])
        values = evaluator.metrics(torch.stack([full, torch.zeros_like(full)]))
        return float(values[0]), float(values[1])

    def __call__(self, edges: frozenset[Edge]) -> float:
        nodes = {e.sender for e in edges} - {INPUT}
        if not self.model.cfg.post_norms and node_edges(self.graph, nodes) == edges:
            return self.nodes()(nodes)
        if self._edges is None:
            self._edges = EdgeEvaluator.of(self.model, self.task, ablation=self.ablation, graph=self.graph)
        return self._edges(edges)


def check_options(method: str, *, budget: float | None, threshold: float | None, ablation: str,
                  steps: int | None) -> None:
    """Refuse options that do not fit ``method`` (before anything runs)."""
    if method not in CIRCUIT_METHODS:
        raise InputError(f"unknown circuit method {method!r}; expected one of {', '.join(CIRCUIT_METHODS)}")
    check_ablation(ablation)
    if budget is not None and threshold is not None:
        raise InputError("give a budget (a fraction of the edges) or a threshold (a score), not both")
    if budget is not None and not 0 < budget <= 1:
        raise InputError(f"budget is a fraction of the edges in (0, 1]; received {budget!r}. Try budget=0.05")
    if threshold is not None and not threshold > 0:
        raise InputError(f"threshold must be a number > 0; received {threshold!r}")
    if budget is not None and method == "acdc":
        raise InputError("a budget does not apply to acdc, which keeps the edges its threshold leaves; give a "
                         "threshold instead")
    if steps is not None and steps < 1:
        raise InputError(f"steps must be at least 1; received {steps!r}")
    if steps is not None and method not in INTEGRATED:
        raise InputError(f"steps apply to {', '.join(sorted(INTEGRATED))}; {method} has no integration steps")
