"""Steering sweeps: effect and cost per layer and strength, random controls, the recommendation."""

from __future__ import annotations

import json
import random

import pytest
import torch
from tiny import WORDS, tiny_hf_model, tiny_task, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.manifest import ModelIdentity
from mechscope.errors import InputError
from mechscope.steering import (NeutralText, SteeringVector, SweepConfig, steer, steering_sweep, target_words,
                                task_effect)

PROMPTS = ["the cat sat on the", "when mary and john went to", "one two three"]


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


@pytest.fixture(scope="module")
def neutral(model) -> NeutralText:
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(400)) for _ in range(4)]
    return NeutralText.of(model, texts, rows=3, seq_len=16)


def _towards(model, word: str) -> SteeringVector:
    """At both layers, the direction that raises ``word``'s logit through the final norm."""
    token = model.tokenizer.convert_tokens_to_ids(word)
    gain = model.adapter.norm_weight(model.adapter.norm(None, "ln_final")).detach()
    direction = gain * model.W_U[:, token].detach()
    direction = 4 * direction / direction.norm()
    return SteeringVector(directions={f"blocks.{l}.hook_resid_post": direction for l in (0, 1)},
                          model=ModelIdentity.of(model), method="mean-diff", position="last", source="test")


def test_a_vector_towards_a_word_beats_random_directions_and_costs_more_with_strength(model, neutral):
    effect = target_words(model, PROMPTS, ["paris"])
    sweep = steering_sweep(model, _towards(model, "paris"), effect, neutral,
                           config=SweepConfig(alphas=(0.5, 2.0, 8.0), n_random=2, max_kl=5.0))
    assert sweep.layers == (0, 1) and sweep.effect.shape == (2, 3)
    assert (sweep.effect[:, -1] > sweep.random_effect[:, -1] + 1).all()
    assert (sweep.effect[:, -1] > sweep.plain_effect + 1).all()
    assert (sweep.kl[:, -1] > sweep.kl[:, 0]).all() and (sweep.kl >= 0).all()
    best = sweep.recommended
    assert best is not None and best.kl <= 5.0 and best.effect > best.random_effect
    allowed = (sweep.kl <= 5.0) & (sweep.effect > sweep.random_effect)
    assert best.effect == pytest.approx(float(sweep.effect[allowed].max()))
    assert sweep.recommend(1e-9) is None
    assert json.loads(json.dumps(sweep.to_dict()))["recommended"]["layer"] == best.layer
    assert len(sweep.plot().axes) >= 3


def test_effects_are_measured_through_open_hooks(model):
    effect = target_words(model, PROMPTS, ["paris", "rome"])
    task = task_effect(model, tiny_task(model))
    plain, plain_task = effect(model), task(model)
    with steer(model, _towards(model, "paris"), alpha=3.0):
        assert effect(model) > plain + 0.5
        assert task(model) != pytest.approx(plain_task)
    assert effect(model) == pytest.approx(plain)


def test_neutral_cost_is_zero_unsteered_and_perplexity_is_the_plain_one(model, neutral):
    kl, perplexity = neutral.cost(model)
    assert abs(kl) < 1e-2 and perplexity == pytest.approx(neutral.plain_perplexity, rel=1e-2)


@pytest.mark.parametrize("options, message", [
    (dict(alphas=()), "SweepConfig.alphas"), (dict(n_random=0), "SweepConfig.n_random"),
    (dict(max_kl=0), "SweepConfig.max_kl"),
])
def test_bad_sweep_configs_name_their_field(options, message):
    with pytest.raises(InputError, match=message):
        SweepConfig(**options)


def test_target_words_must_be_single_tokens(model):
    with pytest.raises(InputError, match="is 2 tokens"):
        target_words(model, PROMPTS, ["paris rome"])
