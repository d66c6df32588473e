"""Tokenization helpers and input checks."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError


def test_to_tokens_and_back(tiny):
    ids = tiny.to_tokens("the cat sat")
    assert ids.shape == (1, 3)
    assert tiny.to_str_tokens("the cat sat") == ["the", "cat", "sat"]
    assert tiny.to_string(ids[0]) == "the cat sat"
    assert tiny.to_string(ids) == ["the cat sat"]


def test_prepend_bos(tiny):
    assert tiny.to_tokens("the cat", prepend_bos=True)[0, 0] == tiny.tokenizer.bos_token_id
    assert tiny.to_tokens("the cat", prepend_bos=False).shape == (1, 2)


def test_padding_sides(tiny):
    left = tiny.tokenize(["the cat sat", "the"], padding_side="left")
    right = tiny.tokenize(["the cat sat", "the"], padding_side="right")
    assert left.attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert right.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert left.position_ids().tolist() == [[0, 1, 2], [0, 0, 0]]


@pytest.mark.parametrize(
    "bad, message",
    [("", "empty"), ("   ", "empty"), ([], "no prompts"), ([3], "expected a string")],
)
def test_bad_prompts(tiny, bad, message):
    with pytest.raises(InputError, match=message):
        tiny(bad)


def test_too_long_and_bad_ids(tiny):
    with pytest.raises(InputError, match="at most 64"):
        tiny(torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(InputError, match=r"\[0, 128\)"):
        tiny(torch.tensor([[1, 500]]))
    with pytest.raises(InputError, match="integer tensor"):
        tiny(torch.ones(1, 3))
