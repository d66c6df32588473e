"""EAP and EAP-IG: EAP is the gradient of the evaluator with respect to edge masks."""

from __future__ import annotations

import pytest
import torch

from mechscope.ablations import ABLATIONS
from mechscope.circuits.attribution import edge_attribution_patching
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.errors import InputError


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_eap_equals_minus_the_mask_gradient(tiny, task, ablation):
    evaluator = EdgeEvaluator.of(tiny, task, ablation=ablation)
    mask = evaluator.graph.edge_grid.clone().requires_grad_(True)
    evaluator.metrics(mask, grad=True).sum().backward()
    expected = -mask.grad * evaluator.graph.edge_grid
    scores = edge_attribution_patching(tiny, task, method="eap", ablation=ablation, progress=False)
    assert expected.abs().max() > 1e-2  # the check has something to see
    torch.testing.assert_close(scores.grid, expected, atol=1e-5, rtol=0)


def test_one_ig_step_is_eap_and_more_steps_differ(tiny, task):
    eap = edge_attribution_patching(tiny, task, method="eap", progress=False)
    one = edge_attribution_patching(tiny, task, method="eap-ig-inputs", steps=1, progress=False)
    five = edge_attribution_patching(tiny, task, method="eap-ig-inputs", steps=5, progress=False)
    torch.testing.assert_close(one.grid, eap.grid, atol=1e-6, rtol=0)
    # on activations, one step per sender group is a clean run per group: the same sum
    one_each = edge_attribution_patching(tiny, task, method="eap-ig-activations", steps=1, progress=False)
    torch.testing.assert_close(one_each.grid, eap.grid, atol=1e-6, rtol=0)
    assert (five.grid - eap.grid).abs().max() > 1e-4


@pytest.mark.parametrize("arch", ["gpt2", "llama-gqa", "gemma3-gqa", "neox-parallel"])
def test_ig_on_activations_of_a_last_layer_mlp_is_exact(tiny, task):
    """The logits edge of the last MLP: nothing but the unembedding lies after it, so
    interpolating its output moves the logits linearly up to the final norm; with many
    steps the IG score approaches the exact effect of ablating that one edge."""
    graph = edge_attribution_patching(tiny, task, method="eap", progress=False).graph
    last = graph.edge(f"logits ← m{graph.n_layers - 1}")
    evaluator = EdgeEvaluator.of(tiny, task)
    exact = evaluator([e for e in graph.edges if e != last]) - evaluator(graph.edges)
    ig = edge_attribution_patching(tiny, task, method="eap-ig-activations", steps=20, progress=False)
    assert abs(ig.as_dict()[last] - exact) < 0.05 * abs(exact) + 1e-3


def test_scores_are_zero_off_the_graph_and_bad_options_refused(tiny, task):
    scores = edge_attribution_patching(tiny, task, method="eap", progress=False)
    assert (scores.grid * (1 - scores.graph.edge_grid)).abs().max() == 0
    with pytest.raises(InputError, match="method must be one of"):
        edge_attribution_patching(tiny, task, method="acdc")
    with pytest.raises(InputError, match="steps and batch_size must be at least 1"):
        edge_attribution_patching(tiny, task, steps=0)


@pytest.mark.parametrize("metric", ["logit_diff", "normalized", "kl"])
def test_batches_of_prompts_add_up_to_the_whole(tiny, task, metric):
    task = task.with_metric(metric)
    whole = edge_attribution_patching(tiny, task, method="eap", batch_size=len(task), progress=False)
    parts = edge_attribution_patching(tiny, task, method="eap", batch_size=1, progress=False)
    torch.testing.assert_close(parts.grid, whole.grid, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["eap", "eap-ig-inputs", "eap-ig-activations"])
def test_interrupted_scoring_resumes_from_its_finished_batches_to_the_same_scores(tokenizer, method):
    """Each batch of prompts passes through the checkpoint once finished; a rerun that is
    served the finished batches computes only the rest, and gives the same scores."""
    from tiny import tiny_hf_model, tiny_task

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("llama-gqa"), tokenizer, name="llama-gqa")
    task = tiny_task(model)
    options = dict(method=method, steps=2, batch_size=1, progress=False)
    whole = edge_attribution_patching(model, task, **options)
    kept, computed = {}, []

    def interrupting(name, compute):
        if len(kept) == 2:
            raise RuntimeError("interrupted")
        kept[name] = compute()
        return kept[name]

    with pytest.raises(RuntimeError, match="interrupted"):
        edge_attribution_patching(model, task, checkpoint=interrupting, **options)

    def resuming(name, compute):
        if name not in kept:
            computed.append(name)
            kept[name] = compute()
        return kept[name]

    resumed = edge_attribution_patching(model, task, checkpoint=resuming, **options)
    assert list(kept)[:2] == ["prompts 0-0", "prompts 1-1"] and computed == ["prompts 2-2"]
    assert torch.equal(resumed.grid, whole.grid)
