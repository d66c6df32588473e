"""gemma3-270m: Gemma 3's extra norms and sliding windows on the real model (slow: ~1 min
the first time, to dequantize)."""

from __future__ import annotations

import pytest
import torch

import mechscope

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma():
    try:
        return mechscope.load_model("gemma3-270m")
    except mechscope.MechscopeError as error:
        pytest.skip(str(error))


@pytest.mark.parametrize(
    "prompt, answer, seen",
    [("The Eiffel Tower is located in the city of", " Paris", 0.76),
     ("When Mary and John went to the store, John gave a drink to", " Mary", 0.85)],
)
def test_top_prediction(gemma, prompt, answer, seen):
    with torch.no_grad():
        probs = gemma(prompt)[0, -1].softmax(-1)
    p, token = probs.max(-1)
    assert gemma.tokenizer.decode([int(token)]) == answer
    assert abs(float(p) - seen) < 0.05


def test_hooks_keep_logits_and_heads_add_up(gemma):
    prompt = "When Mary and John went to the store, John gave a drink to"
    with torch.no_grad():
        plain = gemma(prompt)
    logits, cache = gemma.run_with_cache(prompt)
    torch.testing.assert_close(logits, plain, atol=1e-3, rtol=0)
    parts = cache.decompose_resid(split_heads=True, pos=-1)
    final = cache["resid_post", gemma.cfg.n_layers - 1][:, -1]
    torch.testing.assert_close(parts.components.sum(0), final, atol=1e-3, rtol=1e-4)
    assert gemma.cfg.sliding_window == 512 and gemma.cfg.post_norms
