"""The weight hash: stable, sensitive to any weight, recomputed after in-place changes."""

from __future__ import annotations

import torch
from tiny import tiny_hf_model

from mechscope.models.identity import weights_hash


def test_weights_hash():
    model = tiny_hf_model("gpt2")
    digest = weights_hash(model)
    assert len(digest) == 32 and weights_hash(tiny_hf_model("gpt2")) == digest
    assert weights_hash(tiny_hf_model("gpt2", seed=1)) != digest
    weight = next(model.parameters())
    with torch.no_grad():
        saved = weight[0, 0].clone()
        weight[0, 0] += 1e-3
    assert weights_hash(model) != digest
    with torch.no_grad():
        weight[0, 0] = saved
    assert weights_hash(model) == digest
