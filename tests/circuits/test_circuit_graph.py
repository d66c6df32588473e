"""The circuit graph: node and edge names, counts by formula, GQA and parallel attention."""

from __future__ import annotations

import pytest
from tiny import ARCHS, tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.circuits import INPUT, CircuitGraph, Edge, Node, Receiver
from mechscope.errors import InputError


def _expected_edges(n_layers: int, n_heads: int, n_kv: int, parallel: bool) -> int:
    """Count by hand: each receiver times the senders upstream of it."""
    total = 0
    for layer in range(n_layers):
        upstream = 1 + layer * (n_heads + 1)  # input, and every head and MLP of earlier layers
        total += (n_heads + 2 * n_kv) * upstream
        total += upstream + (0 if parallel else n_heads)  # the MLP, and its own layer's heads
    total += 1 + n_layers * (n_heads + 1)  # the logits read everything
    return total


@pytest.mark.parametrize("arch", ARCHS)
def test_every_family_gives_the_counted_edges(arch):
    model = HookedModel(tiny_hf_model(arch), tiny_tokenizer(), name=arch)
    cfg = model.cfg
    graph = CircuitGraph.of(model)
    assert graph.n_edges == _expected_edges(cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.parallel_attn)
    assert len(graph.receivers) == cfg.n_layers * (cfg.n_heads + 2 * cfg.n_kv_heads + 1) + 1
    assert len(set(graph.edges)) == graph.n_edges  # hashable and distinct


def test_names_are_readable_and_round_trip():
    graph = CircuitGraph(n_layers=3, n_heads=4, n_kv_heads=2, parallel_attn=False)
    edge = graph.edge("a2.3<q> ← m1")
    assert edge == Edge(Receiver(Node(2, 0, 3, "attn"), "q"), Node(1, 1, 0, "mlp"))
    assert str(edge) == "a2.3<q> ← m1" and graph.edge("a2.3<q> <- m1") is edge
    assert str(graph.edge("a1.kv0<k> ← input")) == "a1.kv0<k> ← input"
    assert str(graph.edge("logits ← a2.0")) == "logits ← a2.0"
    assert all(graph.edge(e.name) == e for e in graph.edges)
    assert graph.edges[0].sender == INPUT and sorted(graph.senders) == list(graph.senders)


def test_gqa_keys_and_values_belong_to_key_value_heads():
    graph = CircuitGraph(n_layers=2, n_heads=6, n_kv_heads=2, parallel_attn=False)
    assert [graph.kv_head(h) for h in range(6)] == [0, 0, 0, 1, 1, 1]  # repeat_kv order
    names = {r.name for r in graph.receivers if r.node.layer == 1}
    assert {"a1.kv0<k>", "a1.kv1<v>", "a1.5<q>"} <= names and "a1.5<k>" not in names
    with pytest.raises(InputError, match="no edge 'a1.5<k> ← m0'"):
        graph.edge("a1.5<k> ← m0")


def test_topology_sequential_and_parallel():
    sequential = CircuitGraph(n_layers=2, n_heads=2, n_kv_heads=2, parallel_attn=False)
    parallel = CircuitGraph(n_layers=2, n_heads=2, n_kv_heads=2, parallel_attn=True)
    assert sequential.edge("m1 ← a1.0")  # an MLP reads its own layer's heads ...
    with pytest.raises(InputError):
        parallel.edge("m1 ← a1.0")  # ... unless both read the block's input
    for graph in (sequential, parallel):
        with pytest.raises(InputError):
            graph.edge("a1.0<q> ← a1.1")  # heads of one layer never feed each other
        with pytest.raises(InputError):
            graph.edge("a0.0<q> ← m1")  # nothing flows backwards
        for edge in graph.edges:
            assert edge.sender < edge.receiver.node or edge.receiver.node.kind == "logits"


def test_bad_shapes_are_refused():
    with pytest.raises(InputError, match="multiple of n_kv_heads"):
        CircuitGraph(n_layers=2, n_heads=6, n_kv_heads=4, parallel_attn=False)
