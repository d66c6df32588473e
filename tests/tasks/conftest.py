"""Fixtures: word-level models covering the task generators (see task_word_models.py)."""

from __future__ import annotations

import pytest
from task_word_models import LEFT_OUT, generator_texts, word_model

from mechscope import HookedModel


@pytest.fixture(scope="session")
def words() -> HookedModel:
    """Covers every built-in generator; numbers split into single digits."""
    return word_model(generator_texts(), left_out=LEFT_OUT)


@pytest.fixture(scope="session")
def pair_words() -> HookedModel:
    """Like ``words``, but numbers split into two-digit tokens (GPT-2 style)."""
    return word_model(generator_texts(), digits="pairs", left_out=LEFT_OUT)
