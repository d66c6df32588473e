"""discover_circuit: one entry point over the registry of scorers, the sign rule, the
faithful size, and the compiled toy's circuit found by nodes, then edges inside them."""

from __future__ import annotations

import pytest

from mechscope.circuits.acdc import acdc
from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.discover import CIRCUIT_METHODS, discover_circuit, oriented
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.faithfulness import budget_edges, faithfulness, top_edges
from mechscope.circuits.nodes import node_attribution, node_edges
from mechscope.circuits.refine import refine_edges
from mechscope.errors import InputError
from mechscope.toys import compiled_induction_model, compiled_induction_task


@pytest.mark.parametrize("arch", ["llama-gqa"])
def test_a_budget_keeps_the_top_edges_of_the_method(tiny, task):
    scores = edge_attribution_patching(tiny, task, method="eap", progress=False).as_dict()
    k = budget_edges(len(scores), 0.1)
    for absolute in (True, False):
        found = discover_circuit(tiny, task, method="eap", budget=0.1, absolute=absolute, progress=False)
        assert found.edges == top_edges(scores, k, absolute=absolute) and len(found.edges) == k
        assert found.method == "eap" and found.scores == scores


@pytest.mark.parametrize("arch", ["gpt2"])
def test_eap_ig_means_on_inputs_and_kl_ranks_by_minus_the_score(tiny, task):
    kl = task.with_metric("kl")
    found = discover_circuit(tiny, kl, method="eap-ig", steps=2, budget=0.05, progress=False)
    assert found.scores == edge_attribution_patching(tiny, kl, method="eap-ig-inputs", steps=2,
                                                     progress=False).as_dict()
    k = len(found.edges)
    assert found.edges == top_edges({e: -v for e, v in found.scores.items()}, k, absolute=False)
    assert found.edges != top_edges(found.scores, k, absolute=False)  # the rule changed something
    assert oriented(found.scores, task, "eap") == found.scores  # logit difference: scores as they are


@pytest.mark.parametrize("arch", ["llama-mha"])
def test_acdc_through_the_entry_point_keeps_what_acdc_keeps(tiny, task):
    found = discover_circuit(tiny, task, method="acdc", threshold=0.02, progress=False)
    expected = acdc(tiny, task, threshold=0.02, progress=False)
    assert found.edges == expected.circuit_edges and 0 < len(found.edges) < found.graph.n_edges


@pytest.mark.parametrize("arch", ["llama-gqa", "neox-parallel"])
def test_the_default_is_the_smallest_faithful_node_circuit_within_the_budget(tiny, task):
    found = discover_circuit(tiny, task, budget=0.5, selection="faithful", steps=2, progress=False)
    graph = found.graph
    scores = node_attribution(tiny, task, steps=2, progress=False)
    ranked = [n for n, _ in sorted(scores.as_dict().items(), key=lambda item: item[1]) if n.kind != "input"]
    k = next(k for k in range(len(ranked) + 1) if node_edges(graph, ranked[:k]) == found.edges)  # node-induced
    evaluator = EdgeEvaluator.of(tiny, task)
    f = [faithfulness(evaluator(node_edges(graph, ranked[:j])), evaluator([]), evaluator(graph.edges))
         for j in range(k + 1)]
    assert len(found.edges) <= budget_edges(graph.n_edges, 0.5)
    if abs(1 - f[k]) <= 0.1:  # faithful, and no smaller node circuit was within the tolerance below it
        assert all(v < 0.9 for v in f[:k])


@pytest.mark.parametrize("sharpness", [30.0, 4.0])
def test_nodes_then_edges_inside_recover_the_compiled_circuit(sharpness):
    compiled = compiled_induction_model(sharpness=sharpness)
    model = compiled.model
    for ablation, corruption in (("mean", "value"), ("resample", "key"), ("resample", "value")):
        task = compiled_induction_task(model, n=16, corruption=corruption)
        found = discover_circuit(model, task, ablation=ablation, budget=0.25, selection="faithful", progress=False)
        known = compiled.known_edges if ablation == "mean" else compiled.exercised_edges(corruption)
        assert known <= found.edges and {n.name for n in found.nodes} <= {"input", "a0.0", "a0.kv0", "a1.2",
                                                                            "a1.kv2", "logits"}
        refined = refine_edges(EdgeEvaluator.of(model, task, ablation=ablation), found.edges, progress=False)
        assert refined == known, (ablation, corruption)


def test_refuses_options_that_do_not_fit():
    cases = [({"method": "nope"}, "unknown circuit method"), ({"budget": 0.1, "threshold": 0.1}, "not both"),
             ({"budget": 1.5}, "fraction"), ({"method": "acdc", "budget": 0.1}, "does not apply to acdc"),
             ({"method": "eap", "steps": 3}, "no integration steps"), ({"threshold": 0.0}, "> 0"),
             ({"ablation": "noise"}, "ablation must be one of")]
    for options, message in cases:
        with pytest.raises(InputError, match=message):
            discover_circuit(None, None, **options)
    assert {"eap", "eap-ig", "eap-ig-activations", "exact", "acdc", "nodes"} <= set(CIRCUIT_METHODS)
