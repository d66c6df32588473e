"""The one-pass circuit evaluator: against the edge-by-edge reference, and at the ends."""

from __future__ import annotations

import random

import pytest
import torch
from tiny import tiny_hf_model, tiny_task

from mechscope import HookedModel
from mechscope.ablations import ABLATIONS
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.graph import Node, Receiver
from mechscope.circuits.reference import evaluate_reference
from mechscope.errors import InputError
from mechscope.tasks.task import at_answer


def _random_edges(graph, fraction: float, seed: int):
    rng = random.Random(seed)
    return [e for e in graph.edges if rng.random() < fraction]


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_fast_equals_edge_by_edge_reference(tiny, task, ablation):
    evaluator = EdgeEvaluator.of(tiny, task, ablation=ablation)
    for seed, fraction in ((0, 0.5), (1, 0.1)):
        edges = _random_edges(evaluator.graph, fraction, seed)
        fast, slow = evaluator(edges), evaluate_reference(tiny, task, edges, ablation=ablation)
        assert abs(fast - slow) < 1e-4 * max(1.0, abs(slow))


def test_full_circuit_is_the_clean_run_and_empty_resample_the_corrupted(tiny, task):
    evaluator = EdgeEvaluator.of(tiny, task, ablation="resample")
    grid = evaluator.graph.edge_grid
    with torch.no_grad():
        clean = at_answer(tiny(task.clean), task.answer_pos)
        corrupt = at_answer(tiny(task.corrupt), task.answer_pos)
    both = evaluator.logits(torch.stack([grid, torch.zeros_like(grid)]))
    n = len(task)
    torch.testing.assert_close(both[:n], clean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[n:], corrupt, atol=1e-5, rtol=1e-5)


def test_zero_ablating_every_edge_of_a_receiver_gives_it_exactly_zero(tokenizer):
    """An input built from nothing is 0, not float residue that the norms inside
    attention (Gemma's q/k norms) would blow up: ablating all of a query's edges then
    equals ablating all of its key's edges (both give uniform attention)."""
    model = HookedModel(tiny_hf_model("gemma3-mha"), tokenizer)
    evaluator = EdgeEvaluator.of(model, tiny_task(model), ablation="zero")
    g = evaluator.graph
    without = {r: [e for e in g.edges if e.receiver != r] for r in
               (Receiver(Node(1, 0, 2, "attn"), "q"), Receiver(Node(1, 0, 2, "kv"), "k"))}
    q, k = (evaluator(edges) for edges in without.values())
    assert abs(q - k) < 1e-5


def test_stacked_masks_equal_separate_runs_and_complement(tiny, task):
    evaluator = EdgeEvaluator.of(tiny, task, ablation="mean")
    g = evaluator.graph
    a, b = _random_edges(g, 0.3, 2), _random_edges(g, 0.7, 3)
    together = evaluator.metrics(torch.stack([g.mask(a), g.mask(b)]))
    assert torch.allclose(together, torch.tensor([evaluator(a), evaluator(b)]), atol=1e-5)
    rest = [e for e in g.edges if e not in set(a)]
    assert abs(evaluator.complement(a) - evaluator(rest)) < 1e-5


def test_bad_masks_and_ablations(tiny, task):
    with pytest.raises(InputError, match="ablation must be one of"):
        EdgeEvaluator.of(tiny, task, ablation="noise")
    evaluator = EdgeEvaluator.of(tiny, task, ablation="zero")
    with pytest.raises(InputError, match=r"masks must be \(receiver, sender\)"):
        evaluator.metrics(torch.ones(3, 3))
