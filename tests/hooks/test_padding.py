"""A padded batch gives every prompt the result it gets alone."""

from __future__ import annotations

import pytest
import torch

PROMPTS = ["mary and john went to the store", "the cat sat", "one two three four five six seven paris"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_single_runs(tiny, side):
    batch = tiny.tokenize(PROMPTS, padding_side=side)
    assert batch.has_padding
    names = ["blocks.1.hook_resid_post", "blocks.1.attn.hook_z", "blocks.0.attn.hook_pattern"]
    logits, cache = tiny.run_with_cache(batch, names=names)
    for i, prompt in enumerate(PROMPTS):
        single_logits, single = tiny.run_with_cache(prompt, names=names)
        real = batch.attention_mask[i].bool()
        torch.testing.assert_close(logits[i, real], single_logits[0], atol=1e-4, rtol=0)
        for name in names[:2]:
            torch.testing.assert_close(cache[name][i, real], single[name][0], atol=1e-4, rtol=0)
        pattern = cache["pattern", 0][i][:, real][:, :, real]
        torch.testing.assert_close(pattern, single["pattern", 0][0], atol=1e-4, rtol=0)


def test_last_positions(tiny):
    for side in ("left", "right"):
        batch = tiny.tokenize(PROMPTS, padding_side=side)
        last = batch.last_positions()
        lengths = batch.attention_mask.sum(-1)
        expected = lengths - 1 if side == "right" else torch.full_like(lengths, batch.ids.shape[1] - 1)
        assert torch.equal(last, expected)
