"""Exact edge scores, minimality and ACDC: on tiny models and the compiled induction toy."""

from __future__ import annotations

import pytest
import torch

from mechscope.circuits.acdc import acdc
from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.exact import edge_contributions, exact_edge_scores
from mechscope.errors import InputError
from mechscope.toys.compiled import compiled_induction_model, compiled_induction_task


def test_exact_scores_are_single_edge_ablations_and_near_eap_when_small(tiny, task):
    evaluator = EdgeEvaluator.of(tiny, task)
    graph = evaluator.graph
    exact = exact_edge_scores(evaluator, masks_per_pass=7, progress=False)
    edge = graph.edges[len(graph.edges) // 2]
    by_hand = evaluator([e for e in graph.edges if e != edge]) - evaluator(graph.edges)
    assert abs(exact.as_dict()[edge] - by_hand) < 1e-5
    eap = edge_attribution_patching(tiny, task, method="eap", progress=False)
    # first order: EAP tracks the exact scores (not equal: the model is not linear)
    r = torch.corrcoef(torch.stack([exact.grid.flatten(), eap.grid.flatten()]))[0, 1]
    assert r > 0.5


def test_contributions_of_a_circuit(tiny, task):
    evaluator = EdgeEvaluator.of(tiny, task, ablation="mean")
    edges = list(evaluator.graph.edges[:12])
    contributions = edge_contributions(evaluator, edges, masks_per_pass=5, progress=False)
    edge = edges[3]
    expected = evaluator(edges) - evaluator([e for e in edges if e != edge])
    assert set(contributions) == set(edges) and abs(contributions[edge] - expected) < 1e-5


@pytest.fixture(scope="module")
def compiled():
    return compiled_induction_model()


@pytest.mark.parametrize("corruption", ["key", "value", "query"])
def test_acdc_recovers_the_edges_each_corruption_exercises(compiled, corruption):
    task = compiled_induction_task(compiled.model, n=16, corruption=corruption)
    result = acdc(compiled.model, task, threshold=0.1, metric="kl", progress=False)
    assert result.circuit_edges == compiled.exercised_edges(corruption)
    assert result.n_evaluations < result.scores.graph.n_edges + 1


def test_acdc_with_the_task_metric_and_mean_ablation_finds_the_whole_circuit(compiled):
    task = compiled_induction_task(compiled.model, n=16)
    result = acdc(compiled.model, task, threshold=0.5, metric="task", ablation="mean", progress=False)
    assert result.circuit_edges == compiled.known_edges


def test_acdc_refuses_bad_options(tiny, task):
    with pytest.raises(InputError, match="metric must be one of"):
        acdc(tiny, task, threshold=0.1, metric="logits")
    with pytest.raises(InputError, match="threshold must be a number"):
        acdc(tiny, task, threshold=float("nan"))


def test_mask_gradient_in_batches_is_the_autograd_gradient(tiny, task):
    evaluator = EdgeEvaluator.of(tiny, task, ablation="resample")
    g = evaluator.graph
    mask = g.mask(g.edges[::2]).requires_grad_(True)
    evaluator.metrics(mask, grad=True).sum().backward()
    torch.testing.assert_close(evaluator.mask_gradient(mask.detach(), batch_size=2),
                               mask.grad * g.edge_grid, atol=1e-5, rtol=1e-5)


def test_pruning_keeps_the_compiled_circuit():
    """From every edge down to the 7 designed ones: under mean ablation, rounds of mask
    gradients at the shrinking circuit keep exactly the designed circuit (at a softer
    attention: at sharpness 30 the softmax is saturated and gradients vanish)."""
    from mechscope.circuits.prune import prune_circuit

    compiled = compiled_induction_model(sharpness=4.0)
    task = compiled_induction_task(compiled.model, n=16, corruption="value")
    evaluator = EdgeEvaluator.of(compiled.model, task, ablation="mean")
    kept = prune_circuit(evaluator, evaluator.graph.edges, budget=7 / evaluator.graph.n_edges, progress=False)
    assert kept == compiled.known_edges
    with pytest.raises(InputError, match="shrink is the fraction"):
        prune_circuit(evaluator, kept, budget=0.05, shrink=1.0)
