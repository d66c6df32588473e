"""The bundled sentence embedder: offline, unit vectors, meaning-bearing, each text embedded once."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import MechscopeError


@pytest.fixture(scope="module")
def embed():
    from mechscope.autointerp.embedders import load_embedder

    try:
        return load_embedder(batch_size=4)
    except MechscopeError as error:  # package not installed
        pytest.skip(str(error))


def test_similar_meanings_lie_closer(embed):
    vectors = embed(["numbers and digits", "In 1999 about 30 people paid 45 dollars.", "The cat sat on the mat."])
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.05


def test_a_text_seen_before_is_not_embedded_again(embed):
    first = embed(["a red dress", "a blue car"])
    calls = []
    original = embed._embed
    embed._embed = lambda texts: calls.append(list(texts)) or original(texts)
    try:
        again = embed(["a blue car", "a green tree", "a red dress"])
    finally:
        embed._embed = original
    assert calls == [["a green tree"]]
    assert torch.equal(again[0], first[1]) and torch.equal(again[2], first[0])
