"""Steering along SAE latents: one vector source of mechscope.steering (moved from tests/sae)."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.errors import InputError
from mechscope.lens.readout import unembed
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.steering import generate, steer, vector_from_sae

PROMPT = "the cat sat on the mat and the dog"


def _model(arch: str = "llama-gqa") -> HookedModel:
    return HookedModel(tiny_hf_model(arch), tiny_tokenizer(), name=arch)


def random_sae(d: int = 64, hook: str = "blocks.0.hook_resid_post", seed: int = 0) -> SparseAutoencoder:
    torch.manual_seed(seed)
    return SparseAutoencoder(SAEConfig(d_in=d, d_sae=4 * d, architecture="relu", hook_name=hook))


def _boosting_direction(model, candidates=range(10, 120)) -> tuple[torch.Tensor, int]:
    """A residual direction whose argmax token, at any scale, is a token the plain model
    does not generate after PROMPT."""
    plain = generate(model, PROMPT, max_new_tokens=5).split()
    norm = model.adapter.norm(None, "ln_final")
    weight = model.adapter.norm_weight(norm).detach()
    for token in candidates:
        direction = weight * model.W_U[:, token].detach()
        direction = direction / direction.norm()
        word = model.tokenizer.decode([token])
        if int(unembed(model, 100 * direction).argmax()) == token and word not in plain:
            return direction, token
    raise AssertionError("no candidate token found")


@pytest.mark.parametrize("arch", ["llama-gqa", "gpt2"])
def test_steering_towards_a_token_makes_the_model_generate_it(arch):
    model = _model(arch)
    direction, token = _boosting_direction(model)
    sae = SparseAutoencoder(SAEConfig(d_in=64, d_sae=8, architecture="relu", hook_name="blocks.1.hook_resid_post"))
    with torch.no_grad():
        sae.W_dec[3] = direction
    word = model.tokenizer.decode([token])
    before = generate(model, PROMPT, max_new_tokens=5)
    vector = vector_from_sae(model, sae, feature=3)
    assert vector.method == "sae" and "latent 3" in vector.source
    with steer(model, vector, alpha=200.0):
        steered = generate(model, PROMPT, max_new_tokens=5)
        both = generate(model, [PROMPT, "the dog"], max_new_tokens=3)
    assert word not in before.split()
    assert steered.split() == [word] * 5
    assert [text.split() for text in both] == [[word] * 3] * 2
    assert generate(model, PROMPT, max_new_tokens=5) == before  # the hook is gone


def test_steered_generation_with_the_kv_cache_matches_an_uncached_greedy_loop():
    model = _model()
    sae = random_sae(hook="blocks.0.hook_resid_post")
    ids = model.to_tokens(PROMPT)
    start = ids.shape[1] + 1  # steer from the second generated position on
    with torch.no_grad(), steer(model, vector_from_sae(model, sae, feature=5), alpha=30.0, from_position=start):
        cached = generate(model, PROMPT, max_new_tokens=6)
        for _ in range(6):
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert cached == model.to_string(ids[0, -6:])


def test_a_transcoder_latent_steers_the_point_it_writes():
    model = _model()
    cfg = SAEConfig(d_in=64, d_sae=16, architecture="topk", k=4, d_out=64, hook_name="blocks.0.ln2.hook_normalized",
                    hook_name_out="blocks.0.hook_mlp_out")
    vector = vector_from_sae(model, SparseAutoencoder(cfg), feature=2)
    assert vector.hook_names == ("blocks.0.hook_mlp_out",)


def test_generate_and_sae_vectors_check_their_arguments():
    model = _model()
    with pytest.raises(InputError, match="max_new_tokens"):
        generate(model, PROMPT, max_new_tokens=0)
    with pytest.raises(InputError, match="context of 64"):
        generate(model, PROMPT, max_new_tokens=60)
    with pytest.raises(InputError, match="from_position"), steer(model, vector_from_sae(model, random_sae(), 0),
                                                                 from_position=-1):
        pass
    with pytest.raises(InputError, match="has 256 latents"):
        vector_from_sae(model, random_sae(), feature=256)


@pytest.mark.integration
def test_steering_smollm2_along_the_paris_unembedding_makes_it_say_paris(smollm2):
    paris = int(smollm2.to_tokens(" Paris")[0, 0])
    norm = smollm2.adapter.norm(None, "ln_final")
    direction = smollm2.adapter.norm_weight(norm).detach() * smollm2.W_U[:, paris].detach()
    sae = SparseAutoencoder(SAEConfig(d_in=576, d_sae=4, architecture="relu", hook_name="blocks.20.hook_resid_post"))
    with torch.no_grad():
        sae.W_dec[2] = direction / direction.norm()
    prompt = "My favourite food is"
    plain = generate(smollm2, prompt, max_new_tokens=2)
    with steer(smollm2, vector_from_sae(smollm2, sae, feature=2), alpha=200.0):
        steered = generate(smollm2, prompt, max_new_tokens=2)
    assert "Paris" not in plain and "Paris" in steered
