"""Node attribution: a node's score is the sum of its outgoing edges' EAP scores."""

from __future__ import annotations

import pytest
import torch

from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.graph import INPUT, CircuitGraph
from mechscope.circuits.node_masks import NodeEvaluator
from mechscope.circuits.faithfulness import budget_edges, top_edges
from mechscope.circuits.nodes import node_attribution, node_edge_scores, node_edges, top_nodes_within
from mechscope.errors import InputError


@pytest.mark.parametrize(("arch", "ablation", "steps"), [
    ("gpt2", "resample", 3), ("llama-gqa", "resample", 3), ("neox-parallel", "resample", 3),
    ("llama-gqa", "mean", 1), ("llama-gqa", "zero", 1)])
def test_node_scores_are_column_sums_of_edge_scores(tiny, task, ablation, steps):
    method = "eap" if steps == 1 else "eap-ig-inputs"
    edges = edge_attribution_patching(tiny, task, method=method, ablation=ablation, steps=steps, progress=False)
    nodes = node_attribution(tiny, task, ablation=ablation, steps=steps, batch_size=2, progress=False)
    expected = edges.grid.sum(0)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(nodes.values, expected, atol=1e-4, rtol=1e-4)
    assert nodes.method == ("node-eap" if steps == 1 else "node-eap-ig")


@pytest.mark.parametrize("arch", ["llama-gqa"])
@pytest.mark.parametrize("metric", ["normalized", "kl"])
def test_node_scores_of_other_metrics_are_column_sums_too(tiny, task, metric):
    task = task.with_metric(metric)
    edges = edge_attribution_patching(tiny, task, method="eap-ig-inputs", steps=2, progress=False)
    nodes = node_attribution(tiny, task, steps=2, batch_size=2, progress=False)
    assert edges.grid.abs().max() > 1e-3
    torch.testing.assert_close(nodes.values, edges.grid.sum(0), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
@pytest.mark.parametrize("arch", ["gpt2", "llama-gqa", "neox-parallel"])
def test_node_masks_evaluate_the_induced_edge_circuit(tiny, task, ablation):
    graph = CircuitGraph.of(tiny)
    nodes = [graph.senders[i] for i in (1, 3, 4, len(graph.senders) - 2)]  # two heads of layer 0, m0?, a late head
    edges = EdgeEvaluator.of(tiny, task, ablation=ablation)
    node_ev = NodeEvaluator.of(tiny, task, ablation=ablation, batch_size=2)
    masks = torch.stack([node_ev.mask(nodes), node_ev.mask([]), node_ev.mask(graph.senders[1:])])
    got = node_ev.metrics(masks)
    expected = [edges(node_edges(graph, nodes)), edges(node_edges(graph, [])), edges(graph.edges)]
    assert abs(expected[0] - expected[2]) > 1e-2
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["llama-gqa"])
@pytest.mark.parametrize("metric", ["normalized", "kl", "prob_diff"])
def test_node_masks_chunk_every_metric_as_the_edge_evaluator(tiny, task, metric):
    task = task.with_metric(metric)
    graph = CircuitGraph.of(tiny)
    nodes = graph.senders[2:6]
    node_ev = NodeEvaluator.of(tiny, task, batch_size=2)
    edges = EdgeEvaluator.of(tiny, task)
    got = node_ev.metrics(torch.stack([node_ev.mask(nodes), torch.zeros(len(graph.senders))]))
    torch.testing.assert_close(got, torch.tensor([edges(node_edges(graph, nodes)), edges([])]), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["llama-gqa"])
def test_node_mask_gradient_per_prompt_sums_to_the_attribution(tiny, task):
    """At the full mask the gradient is minus the node attribution (EAP at node level)."""
    node_ev = NodeEvaluator.of(tiny, task, batch_size=2)
    values, grads = node_ev.gradient(node_ev.mask(node_ev.graph.senders))
    scores = node_attribution(tiny, task, progress=False)
    torch.testing.assert_close(-grads.sum(0) / len(task), scores.values, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(values.mean(), node_ev.metrics(node_ev.mask(node_ev.graph.senders))[0])


@pytest.mark.parametrize("arch", ["llama-gqa"])
def test_signed_edge_scores_of_nodes_grow_node_induced_circuits(tiny, task):
    scores = node_attribution(tiny, task, progress=False)
    graph = scores.graph
    for lower_is_better in (False, True):
        edge_scores = node_edge_scores(scores, lower_is_better=lower_is_better).as_dict()
        sign = 1 if lower_is_better else -1
        ranked = [n for n, v in sorted(scores.as_dict().items(), key=lambda item: -sign * item[1]) if n != INPUT]
        for k in (0, 1, 3, len(ranked)):
            circuit = node_edges(graph, ranked[:k])
            assert top_edges(edge_scores, len(circuit), absolute=False) == circuit
    nodes = top_nodes_within(graph, scores, 0.3)
    assert len(node_edges(graph, nodes)) <= budget_edges(graph.n_edges, 0.3) < len(node_edges(graph, nodes + [
        next(n for n, _ in scores.top(len(graph.senders)) if n not in nodes and n != INPUT)]))


def test_node_edges_refuse_what_is_not_a_sender():
    graph = CircuitGraph(n_layers=2, n_heads=4, n_kv_heads=2, parallel_attn=False)
    with pytest.raises(InputError, match="senders of the graph"):
        node_edges(graph, [graph.receivers[4].node])  # a key/value head receives, it does not send
    assert node_edges(graph, []) == {graph.edge("logits ← input")}
