"""The fast patching engine agrees with one plain forward per patch."""

from __future__ import annotations

import pytest
import torch

from mechscope.patching import SWEEPS, activation_patching, activation_patching_reference


@pytest.mark.parametrize("what", list(SWEEPS))
def test_fast_equals_reference(tiny, task, what):
    layers = [tiny.cfg.n_layers - 1, 0]
    fast = activation_patching(tiny, task, what=what, layers=layers, progress=False, max_rows=7)
    slow = activation_patching_reference(tiny, task, what=what, layers=layers)
    assert fast.values.shape == slow.values.shape == tuple(len(d) if isinstance(d, tuple) else d for d in fast.values.shape)
    torch.testing.assert_close(fast.values, slow.values, atol=1e-4, rtol=0)
    assert abs(fast.base_value - slow.base_value) < 1e-5 and abs(fast.source_value - slow.source_value) < 1e-5


def test_noising_and_metric_choices(tiny, task):
    for direction in ("denoise", "noise"):
        fast = activation_patching(tiny, task.with_metric("kl"), what="resid", direction=direction, progress=False)
        slow = activation_patching_reference(tiny, task.with_metric("kl"), what="resid", direction=direction)
        torch.testing.assert_close(fast.values, slow.values, atol=1e-4, rtol=0)


def test_patching_the_only_changed_token_restores_the_source(tiny):
    """Clean and corrupted prompts differ in one token. Patching the residual entering
    block 0 there makes the base run the source run; anywhere else it changes nothing."""
    from mechscope.tasks import Task

    task = Task.from_prompts(tiny, name="one-token", clean=["the cat sat on the red mat"],
                             corrupt=["the dog sat on the red mat"], answers=[" big"], wrong=[" small"])
    result = activation_patching(tiny, task, what="resid", layers=[0], progress=False)
    assert abs(float(result.values[0, 1]) - result.source_value) < 1e-4
    others = torch.cat([result.values[0, :1], result.values[0, 2:]])
    torch.testing.assert_close(others, torch.full_like(others, result.base_value), atol=1e-4, rtol=0)
    assert abs(result.source_value - result.base_value) > 1e-3
