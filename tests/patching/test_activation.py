"""The fast patching engine agrees with one plain forward per patch."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.patching import SWEEPS, activation_patching, activation_patching_reference, make_sweep


@pytest.mark.parametrize("what", list(SWEEPS))
def test_fast_equals_reference(tiny, task, what):
    layers = [tiny.cfg.n_layers - 1, 0]
    fast = activation_patching(tiny, task, what=what, layers=layers, progress=False, max_rows=7)
    slow = activation_patching_reference(tiny, task, what=what, layers=layers)
    expected = make_sweep(tiny, what, n_pos=task.clean.ids.shape[1], layers=layers).shape
    assert fast.values.shape == slow.values.shape == expected
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


@pytest.mark.parametrize(
    "what, kind, cell, index",
    [
        ("k", "attn.hook_k", (1, 1), (slice(None), slice(None), 1)),                 # kv head 1, all positions
        ("heads_by_pos", "attn.hook_z", (1, 5, 2), (slice(None), 5, 2)),            # head 2 at position 5
        ("pattern", "attn.hook_pattern", (1, 3), (slice(None), 3)),                  # head 3's whole pattern
        ("resid", "hook_resid_pre", (1, 7), (slice(None), 7)),
    ],
)
def test_hand_written_patches_agree(tokenizer, make_task, what, kind, cell, index):
    """Independent of the engine's own patching hook: a plain hook restoring one cell's
    clean activation (on a grouped-query model) gives the sweep's value for that cell."""
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("llama-gqa"), tokenizer)
    task = make_task(model)
    sweep = activation_patching(model, task, what=what, layers=[0, 1], progress=False)
    name = f"blocks.1.{kind}"
    _, clean = model.run_with_cache(task.clean, names=name)

    def restore(t, hook):
        t = t.clone()
        t[index] = clean[name][index]
        return t

    metric = task.metric_fn(model)
    with torch.no_grad():
        logits = model.run_with_hooks(task.corrupt, fwd=[(name, restore)])
    value = float(metric(logits[torch.arange(len(task)), task.answer_pos]).mean())
    assert abs(float(sweep.values[cell]) - value) < 1e-4


def test_sweep_arguments_are_checked(tiny, task):
    with pytest.raises(InputError, match="positions= does not apply"):
        activation_patching(tiny, task, what="heads", positions=[1], progress=False)
    with pytest.raises(InputError, match="must not be empty"):
        activation_patching(tiny, task, what="resid", layers=[], progress=False)
    with pytest.raises(InputError, match="unknown sweep"):
        activation_patching(tiny, task, what="neurons", progress=False)
    with pytest.raises(InputError, match="direction must be one of"):
        activation_patching(tiny, task, direction="sideways", progress=False)
