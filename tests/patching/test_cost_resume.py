"""A sweep's cost from shapes, refused above max_tokens; interrupted sweeps resume to the same numbers."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model

from mechscope import HookedModel
from mechscope.errors import CostError
from mechscope.patching import PATCHING_METHODS, activation_patching, patching_cost
from mechscope.patching.attribution import attribution_patching, attribution_patching_star


class Interrupted(Exception):
    """Stands in for Ctrl-C (pytest itself reacts to KeyboardInterrupt)."""


def keeping(kept: dict, *, stop_after: int | None = None):
    """A checkpoint that keeps parts in ``kept`` and serves them back; interrupted after
    ``stop_after`` newly computed parts."""
    computed = []

    def checkpoint(name, compute):
        if name in kept:
            return kept[name]
        if stop_after is not None and len(computed) == stop_after:
            raise Interrupted(name)
        kept[name] = compute()
        computed.append(name)
        return kept[name]

    checkpoint.computed = computed
    return checkpoint


@pytest.fixture
def llama(tokenizer):
    return HookedModel(tiny_hf_model("llama-gqa"), tokenizer, name="llama-gqa")


def test_the_exact_estimate_counts_every_recomputed_layer_and_position(llama, make_task):
    task = make_task(llama)
    n_prompts, n_pos = task.clean.ids.shape
    n_layers, first_answer = llama.cfg.n_layers, int(task.answer_pos.min())
    cost = patching_cost(llama, task, what="resid")
    # each patch at (layer, p) reruns layers layer.. and positions min(p, first answer)..; plus two full runs
    expected = 2 * n_prompts * n_pos + sum(
        n_prompts * (n_pos - min(p, first_answer)) * (n_layers - layer) / n_layers
        for layer in range(n_layers) for p in range(n_pos))
    assert cost.patches == n_layers * n_pos and abs(cost.tokens - int(expected)) <= 1
    assert abs(cost.forward_passes - cost.tokens / (n_prompts * n_pos)) < 1e-9
    assert "patches" in cost.describe() and cost.peak_bytes > 0
    atp = patching_cost(llama, task, what="resid", method="atp")
    assert atp.tokens == 4 * n_prompts * n_pos < cost.tokens
    assert patching_cost(llama, task, what="resid", method="atp*").tokens > atp.tokens


def test_estimates_shrink_with_fewer_prompts_and_positions(llama, make_task):
    task = make_task(llama)
    every = patching_cost(llama, task, what="heads_by_pos")
    assert patching_cost(llama, task.subset(slice(0, 1)), what="heads_by_pos").peak_bytes < every.peak_bytes
    assert patching_cost(llama, task.subset(slice(0, 1)), what="heads", method="atp").peak_bytes < \
        patching_cost(llama, task, what="heads", method="atp").peak_bytes
    fewer = patching_cost(llama, task, what="heads_by_pos", positions=[0, 1])
    assert fewer.patches < every.patches and fewer.tokens < every.tokens
    assert every.over(max_tokens=1, max_bytes=None) and not every.over(max_tokens=None, max_bytes=None)


@pytest.mark.parametrize("method", list(PATCHING_METHODS))
def test_a_sweep_above_max_tokens_is_refused_before_it_runs(llama, make_task, method):
    task = make_task(llama)
    calls = []
    with pytest.raises(CostError, match="above the limit of .* Cheaper"):
        PATCHING_METHODS[method](llama, task, what="resid", max_tokens=10, progress=False,
                                 checkpoint=lambda name, compute: calls.append(name))
    assert not calls


def test_an_interrupted_exact_sweep_resumes_to_the_same_numbers(llama, make_task):
    task = make_task(llama)
    whole = activation_patching(llama, task, what="heads_by_pos", progress=False)
    kept: dict = {}
    with pytest.raises(Interrupted):
        activation_patching(llama, task, what="heads_by_pos", progress=False, checkpoint=keeping(kept, stop_after=1))
    assert list(kept) == ["layer 0"]
    again = keeping(kept)
    resumed = activation_patching(llama, task, what="heads_by_pos", progress=False, checkpoint=again)
    assert again.computed == ["layer 1"]  # layer 0 came from the interrupted run
    assert torch.equal(resumed.values, whole.values)


def test_an_interrupted_graddrop_resumes_to_the_same_numbers(llama, make_task):
    task = make_task(llama)
    whole = attribution_patching_star(llama, task, what="heads", progress=False)
    kept: dict = {}
    with pytest.raises(Interrupted):
        attribution_patching(llama, task, what="heads", qk_fix=True, grad_drop=True, progress=False,
                             checkpoint=keeping(kept, stop_after=1))
    resumed = attribution_patching_star(llama, task, what="heads", progress=False, checkpoint=keeping(kept))
    assert list(kept) == ["graddrop layer 0", "graddrop layer 1"]
    assert torch.equal(resumed.values, whole.values) and resumed.method == whole.method
