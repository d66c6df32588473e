"""Applying steering vectors: exact additions, positions, cached generation, refusals."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.manifest import ModelIdentity
from mechscope.errors import HookPointError
from mechscope.steering import (SteeringVector, VectorMismatchError, generate, generate_uncached, steer,
                                vector_from_direction)

PROMPT = "the cat sat on the mat and the dog"


def _model(arch: str = "llama-gqa", seed: int = 0) -> HookedModel:
    return HookedModel(tiny_hf_model(arch, seed=seed), tiny_tokenizer(), name=arch)


def _vector(model, layers=(0, 1), scale: float = 1.0, seed: int = 0) -> SteeringVector:
    generator = torch.Generator().manual_seed(seed)
    directions = {f"blocks.{layer}.hook_resid_post": scale * torch.randn(model.cfg.d_model, generator=generator)
                  for layer in layers}
    return SteeringVector(directions=directions, model=ModelIdentity.of(model), method="mean-diff",
                          position="last", source="test")


@pytest.mark.parametrize("arch", ["llama-gqa", "gpt2", "gemma3-gqa", "neox-parallel"])
def test_alpha_zero_is_the_plain_model_and_alpha_adds_exactly_alpha_times_the_direction(arch):
    model = _model(arch)
    vector = _vector(model, layers=(1,))
    name = "blocks.1.hook_resid_post"
    with torch.no_grad():
        plain_logits, plain = model.run_with_cache(PROMPT, names=[name])
        with steer(model, vector, alpha=0.0):
            torch.testing.assert_close(model(PROMPT), plain_logits, atol=0, rtol=0)
        with steer(model, vector, alpha=2.5):
            _, steered = model.run_with_cache(PROMPT, names=[name])
    torch.testing.assert_close(steered[name], plain[name] + 2.5 * vector.directions[name], atol=1e-5, rtol=1e-5)
    assert not model.hf_model._forward_pre_hooks  # the offset tracker is gone too


def test_positions_and_from_position_choose_where_to_add():
    model = _model()
    vector = _vector(model, layers=(0,))
    with torch.no_grad():
        plain = model(PROMPT)
        with steer(model, vector, alpha=5.0, from_position=4):
            later = model(PROMPT)
        with steer(model, vector, alpha=5.0, positions=[2, 6]):
            chosen = model(PROMPT)
    torch.testing.assert_close(later[:, :4], plain[:, :4])
    assert (later[:, 4:] - plain[:, 4:]).abs().amax(-1).min() > 1e-3
    torch.testing.assert_close(chosen[:, :2], plain[:, :2])
    assert (chosen[:, 2] - plain[:, 2]).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["llama-gqa", "gpt2", "gemma3-gqa", "neox-sequential"])
def test_cached_generation_equals_the_uncached_loop_under_multi_layer_steering(arch):
    model = _model(arch)
    vector = _vector(model, layers=(0, 1), scale=0.3)  # gentle enough that no family jumps to EOS at once
    start = model.to_tokens(PROMPT).shape[1] - 2  # steer from inside the prompt on
    with torch.no_grad(), steer(model, vector, alpha=1.0, from_position=start):
        cached = generate(model, PROMPT, max_new_tokens=8)
        uncached = generate_uncached(model, PROMPT, max_new_tokens=8)
    assert cached == uncached and len(cached.split()) >= 4
    assert generate(model, PROMPT, max_new_tokens=8) != cached  # steering changed the text


def test_hooks_are_gone_after_an_error_inside_the_block():
    model = _model()
    before = model(PROMPT).detach()
    with pytest.raises(RuntimeError, match="boom"), steer(model, _vector(model), alpha=3.0):
        raise RuntimeError("boom")
    torch.testing.assert_close(model(PROMPT).detach(), before)
    assert not model.hf_model._forward_pre_hooks


def test_vectors_refuse_another_model_another_layer_and_another_width():
    model = _model()
    vector = _vector(model)
    with pytest.raises(VectorMismatchError, match="made on llama-gqa .* other weights of the same architecture"):
        with steer(_model(seed=1), vector):
            pass
    with pytest.raises(VectorMismatchError, match="made on llama-gqa .* another model"):
        with steer(_model("gpt2"), vector):
            pass
    with pytest.raises(VectorMismatchError, match=r"directions at layers \[0, 1\] .* received layers \[5\]"):
        with steer(model, vector, layers=[5]):
            pass
    with pytest.raises(VectorMismatchError, match="has 64 numbers but llama-gqa's blocks.0.mlp.hook_post is 96"):
        vector_from_direction(model, torch.ones(64), "blocks.0.mlp.hook_post", method="probe")
    with pytest.raises(HookPointError, match="unknown hook point"):
        vector_from_direction(model, torch.ones(64), "blocks.9.hook_resid_post", method="probe")
