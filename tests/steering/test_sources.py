"""Vector methods: each against its definition, and SAE latents as one source among others."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.positions import Position, read_positions
from mechscope.errors import InputError
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.steering import VECTOR_SOURCES, ContrastPairs, make_vector
from mechscope.steering.sources import pca_diff, probe_direction, sae_latent

PAIRS = ContrastPairs(name="tiny", positive=("the cat sat on the mat", "the big dog is red", "mary went to the store",
                                             "one two three four", "tom gave a drink to alice"),
                      negative=("the cat sat on the blue mat", "the small dog is blue", "john went to the city",
                                "four five six seven", "bob gave a drink to mary"))
HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


def _acts(model, texts, position="last"):
    return read_positions(model, HOOK, texts, Position.parse(position)).acts[HOOK]


@pytest.mark.parametrize("position", ["last", "mean"])
def test_mean_diff_is_the_mean_of_the_pairs_differences(model, position):
    vector = make_vector(model, PAIRS, method="mean-diff", layers=[1], position=position)
    expected = (_acts(model, PAIRS.positive, position) - _acts(model, PAIRS.negative, position)).mean(0)
    torch.testing.assert_close(vector.directions[HOOK], expected, atol=1e-5, rtol=1e-5)
    assert vector.position == position and vector.source == PAIRS.describe() and vector.method == "mean-diff"


def test_actadd_is_one_pairs_difference_and_refuses_many(model):
    one = ContrastPairs(name="one", positive=PAIRS.positive[:1], negative=PAIRS.negative[:1])
    vector = make_vector(model, one, method="actadd", layers=[1])
    expected = _acts(model, one.positive)[0] - _acts(model, one.negative)[0]
    torch.testing.assert_close(vector.directions[HOOK], expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="actadd takes exactly one pair"):
        make_vector(model, PAIRS, method="actadd", layers=[1])


def test_pca_diff_finds_the_direction_the_differences_vary_along_signed_towards_positives():
    generator = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(16, generator=generator), dim=0)
    size = torch.linspace(0.5, 6.0, 40)  # positives above negatives along u, by varying amounts
    negative = torch.randn(40, 16, generator=generator)
    positive = negative + size[:, None] * u + 0.05 * torch.randn(40, 16, generator=generator)
    direction = pca_diff(positive, negative, hook_name=HOOK)
    assert torch.nn.functional.cosine_similarity(direction, u, dim=0) > 0.99
    torch.testing.assert_close(direction.norm(), (positive - negative).mean(0).norm())
    flipped = pca_diff(negative, positive, hook_name=HOOK)
    assert torch.nn.functional.cosine_similarity(flipped, -u, dim=0) > 0.99


def test_probe_direction_points_from_negatives_to_positives():
    generator = torch.Generator().manual_seed(1)
    negative = torch.randn(30, 12, generator=generator)
    positive = torch.randn(30, 12, generator=generator)
    positive[:, 3] += 4.0
    direction = probe_direction(positive, negative, hook_name=HOOK)
    assert int(direction.abs().argmax()) == 3 and direction[3] > 0


def test_sae_source_picks_the_latent_that_differs_most_or_the_one_given():
    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=6, architecture="relu", hook_name=HOOK))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(8)[:, :6])
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    positive, negative = torch.zeros(4, 8), torch.zeros(4, 8)
    positive[:, 4] = 3.0
    chosen = sae_latent(positive, negative, hook_name=HOOK, sae=sae)
    torch.testing.assert_close(chosen, 3.0 * sae.W_dec[4].detach())
    torch.testing.assert_close(sae_latent(positive, negative, hook_name=HOOK, sae=sae, feature=1),
                               sae.W_dec[1].detach())
    with pytest.raises(InputError, match="this SAE's directions live at blocks.1.hook_resid_post"):
        sae_latent(positive, negative, hook_name="blocks.0.hook_resid_post", sae=sae)


def test_every_method_makes_a_vector_through_the_model(model):
    sae = SparseAutoencoder(SAEConfig(d_in=64, d_sae=32, architecture="relu", hook_name=HOOK))
    for method in VECTOR_SOURCES:
        pairs = ContrastPairs(name="one", positive=PAIRS.positive[:1], negative=PAIRS.negative[:1]) \
            if method == "actadd" else PAIRS
        options = {"sae": sae} if method == "sae" else {}
        vector = make_vector(model, pairs, method=method, layers=[1], **options)
        assert vector.hook_names == (HOOK,) and torch.isfinite(vector.directions[HOOK]).all()
    with pytest.raises(InputError, match="unknown vector method 'caa'"):
        make_vector(model, PAIRS, method="caa", layers=[1])
    with pytest.raises(InputError, match=r"layers must be one or more integers in \[0, 2\)"):
        make_vector(model, PAIRS, layers=[])


def test_uncentred_pca_keeps_a_constant_difference_that_centred_pca_removes():
    generator = torch.Generator().manual_seed(2)
    u = torch.nn.functional.normalize(torch.randn(16, generator=generator), dim=0)
    negative = torch.randn(40, 16, generator=generator)
    positive = negative + 3.0 * u + 0.1 * torch.randn(40, 16, generator=generator)  # the same shift every pair
    uncentred = pca_diff(positive, negative, hook_name=HOOK, center=False)
    centred = pca_diff(positive, negative, hook_name=HOOK)
    assert torch.nn.functional.cosine_similarity(uncentred, u, dim=0) > 0.99
    assert abs(torch.nn.functional.cosine_similarity(centred, u, dim=0)) < 0.5
