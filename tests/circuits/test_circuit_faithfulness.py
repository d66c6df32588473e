"""Faithfulness, its curve over budgets, CPR and CMD, on evaluators whose answers are known."""

from __future__ import annotations

import pytest

from mechscope.circuits import CircuitGraph
from mechscope.circuits.faithfulness import (
    BUDGETS,
    area_under,
    budget_edges,
    faithfulness,
    faithfulness_curve,
    top_edges,
)
from mechscope.errors import InputError

GRAPH = CircuitGraph(n_layers=2, n_heads=2, n_kv_heads=1, parallel_attn=False)


def _additive(weights):
    """A metric that is the sum of the kept edges' weights: faithfulness is known exactly."""
    return lambda edges: sum(weights[e] for e in edges)


def test_faithfulness_formula_and_undefined_case():
    assert faithfulness(3.0, 1.0, 5.0) == pytest.approx(0.5)
    assert faithfulness(1.0, 1.0, 5.0) == 0 and faithfulness(5.0, 1.0, 5.0) == 1
    with pytest.raises(InputError, match="equals the empty circuit's"):
        faithfulness(2.0, 4.0, 4.0)


def test_area_under_matches_mib_trapezoids():
    assert area_under([0.5, 1.0], [1.0, 1.0]) == pytest.approx(0.5)  # x runs from the first budget
    assert area_under([0.0, 0.5, 1.0], [0.0, 1.0, 1.0]) == pytest.approx(0.25 + 0.5)
    assert area_under([1, 2, 4], [0, 2, 2]) == pytest.approx(0.25 * 1 + 0.5 * 2)  # divided by the last budget
    with pytest.raises(InputError, match="must increase"):
        area_under([0.5, 0.1], [1, 1])


def test_budgets_pick_the_top_edges_and_at_least_one():
    n = GRAPH.n_edges
    assert budget_edges(n, 1.0) == n and budget_edges(n, 1e-9) == 1 and budget_edges(n, 0.5) == round(n / 2)
    with pytest.raises(InputError, match=r"in \(0, 1\]"):
        budget_edges(n, 1.5)
    scores = {e: float(i) * (-1) ** i for i, e in enumerate(GRAPH.edges)}
    by_abs = top_edges(scores, 3)
    assert by_abs == frozenset(GRAPH.edges[n - 3 :])  # |score| = index: the last three
    signed = top_edges(scores, 3, absolute=False)  # the most negative: ablating them costs most
    assert all(scores[e] < 0 for e in signed) and len(signed) == 3
    assert max(scores[e] for e in signed) < min(scores[e] for e in GRAPH.edges if e not in signed)


def test_curve_of_a_perfect_ranking_on_an_additive_metric():
    # one edge carries everything: every budget's circuit contains it, so f = 1 throughout
    star = GRAPH.edges[7]
    weights = {e: (4.0 if e == star else 0.0) for e in GRAPH.edges}
    scores = {e: (1.0 if e == star else 0.01 * i) for i, e in enumerate(GRAPH.edges)}
    curve = faithfulness_curve(_additive(weights), GRAPH, scores, progress=False)
    assert curve.faithfulness == tuple([1.0] * len(BUDGETS)) and curve.m_full == 4 and curve.m_empty == 0
    assert curve.cpr == pytest.approx(1 - BUDGETS[0]) and curve.cmd == pytest.approx(0)
    assert curve.smallest_budget(0.8) == BUDGETS[0]


def test_curve_of_a_reversed_ranking_is_zero_until_the_end():
    star = GRAPH.edges[0]
    weights = {e: (1.0 if e == star else 0.0) for e in GRAPH.edges}
    scores = {e: (0.0 if e == star else 1.0 + i) for i, e in enumerate(GRAPH.edges)}  # the key edge ranked last
    curve = faithfulness_curve(_additive(weights), GRAPH, scores, progress=False)
    assert curve.faithfulness[-1] == 1 and all(f == 0 for f in curve.faithfulness[:-1])
    assert curve.cpr == pytest.approx((1.0 - 0.5) / 2)  # only the last trapezoid has area
    assert curve.cmd == pytest.approx(area_under(BUDGETS, [1.0] * (len(BUDGETS) - 1) + [0.0]))
    assert curve.smallest_budget(0.8) == 1.0


def test_scores_must_cover_the_graph():
    with pytest.raises(InputError, match="scores must cover every edge"):
        faithfulness_curve(lambda edges: 0.0, GRAPH, {GRAPH.edges[0]: 1.0}, progress=False)


def test_greedy_circuits_lead_to_the_logits():
    import random

    from mechscope.circuits.faithfulness import greedy_edges, select_edges

    graph = CircuitGraph(n_layers=3, n_heads=4, n_kv_heads=2, parallel_attn=False)
    rng = random.Random(0)
    scores = {e: rng.gauss(0, 1) for e in graph.edges}
    for k in (1, 5, 20, 60):
        chosen = greedy_edges(graph, scores, k)
        assert len(chosen) == k
        senders = {e.sender for e in chosen}
        for edge in chosen:
            node = edge.receiver.node
            owners = {node} if node.kind != "kv" else {
                n for n in graph.senders if n.kind == "attn" and n.layer == node.layer and graph.kv_head(n.index) == node.index}
            assert node.kind == "logits" or owners & senders, edge  # its node sends into the circuit
    assert greedy_edges(graph, scores, graph.n_edges) == frozenset(graph.edges)
    # the first edge is the best edge into the logits, not the best edge overall
    best_logits = max((e for e in graph.edges if e.receiver.node.kind == "logits"), key=lambda e: abs(scores[e]))
    assert greedy_edges(graph, scores, 1) == {best_logits}
    with pytest.raises(InputError, match="selection must be one of"):
        select_edges(graph, scores, 3, selection="random")
