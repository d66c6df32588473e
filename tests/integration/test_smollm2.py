"""smollm2-135m, the default model: predictions, cache fidelity and the residual algebra."""

from __future__ import annotations

import pytest
import torch

import mechscope

pytestmark = pytest.mark.integration

EIFFEL = "The Eiffel Tower is located in the city of"
IOI = "When Mary and John went to the store, John gave a drink to"


def _top(model, prompt):
    with torch.no_grad():
        probs = model(prompt)[0, -1].softmax(-1)
    p, token = probs.max(-1)
    return model.tokenizer.decode([int(token)]), float(p)


def test_paris_is_top(smollm2):
    token, p = _top(smollm2, EIFFEL)
    assert token == " Paris"
    assert abs(p - 0.70) < 0.05  # 0.70 seen on this machine (design.md)


def test_mary_is_top(smollm2):
    token, p = _top(smollm2, IOI)
    assert token == " Mary"
    assert abs(p - 0.92) < 0.05


def test_cached_weights_equal_the_gguf_dequantization(smollm2):
    """The safetensors cache holds exactly what transformers dequantizes from the GGUF
    (including the tied embedding/unembedding), and a second load reads the same."""
    from transformers import AutoModelForCausalLM

    from mechscope.models.registry import BUNDLED

    gguf = BUNDLED["smollm2-135m"].gguf_path(mechscope.models.cache.cache_root())
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    ids = smollm2.to_tokens(IOI)
    with torch.no_grad():
        torch.testing.assert_close(smollm2(ids), direct(ids).logits, atol=0, rtol=0)
        again = mechscope.load_model("smollm2-135m")
        torch.testing.assert_close(again(ids), direct(ids).logits, atol=0, rtol=0)


def test_every_hook_point_keeps_logits(smollm2):
    ids = smollm2.to_tokens(IOI)
    with torch.no_grad():
        plain = smollm2(ids)
    logits, cache = smollm2.run_with_cache(ids)
    assert len(cache) == len(smollm2.hook_names()) - smollm2.cfg.n_layers  # all but attn.hook_result
    torch.testing.assert_close(logits, plain, atol=1e-4, rtol=0)


def test_padded_batch_equals_single_prompts(smollm2):
    prompts = [EIFFEL, IOI, "The capital of Germany is"]
    for side in ("left", "right"):
        batch = smollm2.tokenize(prompts, padding_side=side)
        with torch.no_grad():
            logits = smollm2(batch)
        last = batch.last_positions()
        for i, prompt in enumerate(prompts):
            with torch.no_grad():
                single = smollm2(prompt)[0, -1]
            torch.testing.assert_close(logits[i, last[i]], single, atol=1e-4, rtol=0)


def test_decomposition_and_logit_attribution_add_up(smollm2):
    logits, cache = smollm2.run_with_cache(IOI)
    parts = cache.decompose_resid(split_heads=True, pos=-1)
    assert len(parts) == 1 + smollm2.cfg.n_layers * (smollm2.cfg.n_heads + 1)
    final = cache["resid_post", smollm2.cfg.n_layers - 1][:, -1]
    # SmolLM2's residual has a few dimensions near 650, where one float32 ulp is 6e-5:
    # absolute 1e-4 holds elsewhere, relative 1e-6 there.
    torch.testing.assert_close(parts.components.sum(0), final, atol=1e-4, rtol=1e-6)
    mary, john = smollm2.to_tokens(" Mary")[0, 0], smollm2.to_tokens(" John")[0, 0]
    attrs = cache.logit_attrs(parts.components, mary, john, pos=-1)
    expected = logits[0, -1, mary] - logits[0, -1, john]
    torch.testing.assert_close(attrs.sum(0)[0], expected, atol=1e-4, rtol=0)
