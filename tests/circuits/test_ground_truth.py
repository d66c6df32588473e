"""ROC AUC against known edges, and the induction circuit's edges in graph names."""

from __future__ import annotations

import itertools

import pytest

from mechscope.circuits.graph import CircuitGraph
from mechscope.circuits.ground_truth import induction_edges, roc_auc
from mechscope.errors import InputError
from mechscope.toys.compiled import compiled_induction_model

GRAPH = CircuitGraph(n_layers=2, n_heads=4, n_kv_heads=4, parallel_attn=False)
EDGES = GRAPH.edges[:10]
POSITIVES = EDGES[:3]


def test_perfect_reversed_and_constant_scores():
    perfect = {e: (10.0 if e in POSITIVES else float(i)) for i, e in enumerate(EDGES)}
    reversed_ = {e: (-1.0 if e in POSITIVES else float(i)) for i, e in enumerate(EDGES)}
    assert abs(roc_auc(perfect, POSITIVES) - 1.0) < 1e-12
    assert abs(roc_auc(reversed_, POSITIVES, absolute=False) - 0.0) < 1e-12
    assert abs(roc_auc(dict.fromkeys(EDGES, 0.25), POSITIVES) - 0.5) < 1e-12


def test_absolute_ranks_by_magnitude():
    scores = {e: (-5.0 if e in POSITIVES else 1.0) for e in EDGES}
    assert abs(roc_auc(scores, POSITIVES) - 1.0) < 1e-12
    assert abs(roc_auc(scores, POSITIVES, absolute=False) - 0.0) < 1e-12


def test_matches_counting_every_pair():
    values = [3.0, 1.0, 1.0, -2.0, 0.5, 1.0, 3.0, 0.0, -1.0, 2.0]  # ties across the classes
    scores = dict(zip(EDGES, values))
    positives = {EDGES[0], EDGES[1], EDGES[4]}
    pairs = [(scores[p], scores[n]) for p, n in itertools.product(positives, set(EDGES) - positives)]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert abs(roc_auc(scores, positives, absolute=False) - expected) < 1e-12


def test_refuses_degenerate_inputs():
    scores = dict.fromkeys(EDGES, 1.0)
    with pytest.raises(InputError, match="at least one positive and one negative"):
        roc_auc(scores, [])
    with pytest.raises(InputError, match="at least one positive and one negative"):
        roc_auc(scores, EDGES)
    with pytest.raises(InputError, match="every positive edge needs a score"):
        roc_auc(scores, [GRAPH.edges[-1]])
    with pytest.raises(InputError, match="finite"):
        roc_auc({**scores, EDGES[5]: float("nan")}, POSITIVES)


def test_induction_edges_are_the_compiled_models_known_edges():
    compiled = compiled_induction_model()
    graph = CircuitGraph.of(compiled.model)
    assert induction_edges(graph, 0, (2,)) == compiled.known_edges


def test_induction_edges_name_key_value_heads_under_grouping():
    graph = CircuitGraph(n_layers=2, n_heads=4, n_kv_heads=2, parallel_attn=False)
    edges = {str(e) for e in induction_edges(graph, 1, [2, 3])}
    assert {"a0.1<q> ← input", "a0.kv0<k> ← input", "a1.kv1<k> ← a0.1", "logits ← a1.3"} <= edges
    assert len(edges) == 3 + 6  # heads 2 and 3 share key/value head 1: two queries, one key, one value, two logits


def test_induction_edges_refuse_bad_heads():
    with pytest.raises(InputError, match="head indices"):
        induction_edges(GRAPH, 0, [])
    with pytest.raises(InputError, match="head indices"):
        induction_edges(GRAPH, 4, [1])
