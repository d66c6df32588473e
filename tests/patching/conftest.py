"""A tiny IOI-like task that the tiny word tokenizer can express."""

from __future__ import annotations

import pytest

from mechscope.tasks import Task

CLEAN = [
    "when mary and john went to the store , john gave a drink to",
    "when tom and alice went to the city , alice gave a drink to",
    "one two three four five six seven",
]
CORRUPT = [
    "when bob and alice went to the store , tom gave a drink to",
    "when john and bob went to the city , mary gave a drink to",
    "one two three five five six seven",
]


def tiny_task(model) -> Task:
    """Three pairs of different lengths (left-padded), with the logit-difference metric."""
    return Task.from_prompts(model, name="tiny-ioi", clean=CLEAN, corrupt=CORRUPT,
                             answers=[" mary", " tom", " eiffel"], wrong=[" john", " alice", " paris"])


@pytest.fixture
def task(tiny):
    return tiny_task(tiny)


@pytest.fixture
def make_task():
    return tiny_task
