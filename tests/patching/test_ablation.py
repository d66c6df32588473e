"""Zero, mean and resample ablation."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.patching.ablation import Ablation, ablated, ablation_sweep


def _answer_metric(model, task, logits):
    metric = task.metric_fn(model)
    return float(metric(logits[torch.arange(len(task)), task.answer_pos]).mean())


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_sweep_equals_one_ablated_run_per_head(tiny, task, method):
    layer = tiny.cfg.n_layers - 1
    sweep = ablation_sweep(tiny, task, what="heads", method=method, layers=[layer], progress=False)
    for head in range(tiny.cfg.n_heads):
        spec = Ablation(points=f"blocks.{layer}.attn.hook_z", heads=(head,), method=method)
        with ablated(tiny, spec, like=task.clean, reference=task.corrupt), torch.no_grad():
            value = _answer_metric(tiny, task, tiny(task.clean))
        assert abs(float(sweep.values[0, head]) - value) < 1e-4


def test_what_each_method_puts_in_place(tiny, task):
    name = "blocks.0.hook_resid_post"
    _, ref = tiny.run_with_cache(task.corrupt, names=name)
    seen = {}

    def record(t, hook):
        seen["value"] = t.clone()

    real = task.corrupt.attention_mask.float()[:, :, None]  # padding stays out of the mean
    mean = ((ref[name] * real).sum(0) / real.sum(0)).expand_as(ref[name])
    for method, expected in [("zero", torch.zeros_like(ref[name])), ("mean", mean)]:
        with ablated(tiny, Ablation(points=name, method=method, positions=(2, 3)), like=task.clean,
                     reference=task.corrupt), tiny.hooks(fwd=[(name, record)]):
            tiny(task.clean)
        torch.testing.assert_close(seen["value"][:, 2:4], expected[:, 2:4])
    with ablated(tiny, Ablation(points=name, method="resample", seed=1), like=task.clean,
                 reference=task.corrupt), tiny.hooks(fwd=[(name, record)]):
        tiny(task.clean)
    for row in seen["value"]:  # every row is some reference prompt's activation
        assert any(torch.allclose(row, ref_row) for ref_row in ref[name])


def test_bad_ablations(tiny, task):
    with pytest.raises(InputError, match="method must be one of"):
        Ablation(points="blocks.0.hook_resid_post", method="gaussian")
    with pytest.raises(InputError, match="needs reference prompts"):
        with ablated(tiny, Ablation(points="blocks.0.hook_resid_post", method="mean"), like=task.clean):
            pass
    with pytest.raises(InputError, match="no head axis"):
        with ablated(tiny, Ablation(points="blocks.0.hook_resid_post", heads=(0,)), like=task.clean):
            tiny(task.clean)


def test_mean_over_an_unrelated_reference_set(tiny, task):
    """A reference set of another size works, and its metric is not reported as if the
    task's answers applied to it."""
    other = tiny.tokenize(["the cat sat on the mat", "one two three", "the dog sat", "red blue", "big"],
                          padding_side="left")
    result = ablation_sweep(tiny, task, what="resid", method="mean", reference=other, progress=False)
    assert torch.isfinite(result.values).all()
    assert result.source_value != result.source_value  # NaN


def test_out_of_range_heads_and_positions(tiny, task):
    spec = Ablation(points="blocks.0.attn.hook_z", heads=(99,))
    with pytest.raises(InputError, match=r"heads \[99\] are outside"):
        with ablated(tiny, spec, like=task.clean):
            tiny(task.clean)
