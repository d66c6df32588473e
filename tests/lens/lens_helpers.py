"""Shared text for the lens tests: sentences over the tiny tokenizer's words."""

from __future__ import annotations

import random

from tiny import WORDS

PROMPT = "when mary and john went to the store , john gave a drink to"


def word_texts(n_texts: int = 60, n_words: int = 60, seed: int = 0) -> list[str]:
    """Random sentences over the tiny vocabulary (no unknown words), reproducibly."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(n_words)) for _ in range(n_texts)]
