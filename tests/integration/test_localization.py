"""Localization techniques on smollm2-135m IOI: fast paths agree with references."""

from __future__ import annotations

import pytest
import torch

from mechscope.lens.dla import direct_logit_attribution
from mechscope.patching import activation_patching, activation_patching_reference
from mechscope.patching.attribution import attribution_patching
from mechscope.tasks import make_task

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ioi(smollm2):
    return make_task("ioi", smollm2, n=4, seed=0)


def test_fast_patching_equals_reference_on_the_real_model(smollm2, ioi):
    kwargs = dict(what="heads_by_pos", layers=[0, 29], positions=[0, 9, ioi.clean.ids.shape[1] - 1])
    fast = activation_patching(smollm2, ioi, progress=False, **kwargs)
    slow = activation_patching_reference(smollm2, ioi, **kwargs)
    torch.testing.assert_close(fast.values, slow.values, atol=1e-4, rtol=0)


def test_dla_adds_up_to_the_logit_difference(smollm2, ioi):
    result = direct_logit_attribution(smollm2, ioi)
    parts = result.heads.sum() + result.mlps.sum() + result.attn_bias.sum() + result.embed + result.bias
    assert abs(float(parts) - result.total) < 1e-4 * max(1.0, abs(result.total)) + 1e-4
    assert result.total > 2  # smollm2 prefers the indirect object clearly


def test_atp_tracks_exact_patching_over_heads(smollm2, ioi):
    layers = [20, 24, 29]
    exact = activation_patching(smollm2, ioi, what="heads", layers=layers, progress=False).effects.flatten()
    atp = attribution_patching(smollm2, ioi, what="heads", layers=layers, progress=False).effects.flatten()
    assert torch.corrcoef(torch.stack([exact, atp]))[0, 1] > 0.8
