"""Node pruning at the circuit: the compiled toy's two heads survive, and the options are checked."""

from __future__ import annotations

import pytest

from mechscope.circuits.node_masks import NodeEvaluator, count_node_edges
from mechscope.circuits.node_prune import prune_nodes
from mechscope.circuits.nodes import node_edges
from mechscope.errors import InputError
from mechscope.toys import compiled_induction_model, compiled_induction_task


@pytest.fixture(scope="module")
def compiled():
    return compiled_induction_model(sharpness=4.0)


@pytest.mark.parametrize("objective", ["faithful", "metric"])
def test_pruning_keeps_the_designed_heads(compiled, objective):
    task = compiled_induction_task(compiled.model, n=16, corruption="value")
    evaluator = NodeEvaluator.of(compiled.model, task, ablation="mean")
    pruned = prune_nodes(evaluator, budget=12 / evaluator.graph.n_edges, objective=objective, progress=False)
    assert {n.name for n in pruned.nodes} == {"a0.0", "a1.2"}
    assert pruned.n_edges == len(node_edges(evaluator.graph, pruned.nodes)) == 12
    assert abs(pruned.path[-1][2] - pruned.m_full) < 1e-3 * abs(pruned.m_full)  # the circuit does all the model does
    assert [rung[0] for rung in pruned.path] == sorted((rung[0] for rung in pruned.path), reverse=True)


def test_edge_count_of_a_node_mask_is_that_of_its_circuit(compiled):
    task = compiled_induction_task(compiled.model, n=4)
    evaluator = NodeEvaluator.of(compiled.model, task)
    graph = evaluator.graph
    for nodes in ([], graph.senders[1:3], graph.senders[1:]):
        assert count_node_edges(graph, evaluator.mask(nodes)) == len(node_edges(graph, nodes))


def test_refuses_bad_options(compiled):
    evaluator = NodeEvaluator.of(compiled.model, compiled_induction_task(compiled.model, n=2))
    with pytest.raises(InputError, match="objective"):
        prune_nodes(evaluator, budget=0.1, objective="largest")
    with pytest.raises(InputError, match="shrink"):
        prune_nodes(evaluator, budget=0.1, shrink=1.0)
