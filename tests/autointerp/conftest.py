"""A tiny model, a store harvested from it, and word-indicator units over that store."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from tiny import WORDS, tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.harvest import harvest

sys.path.insert(0, str(Path(__file__).parent))

from autointerp_setup import HOOK  # noqa: E402  (after the path insert above)


@pytest.fixture(scope="session")
def tiny_model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="tiny-llama")


@pytest.fixture(scope="session")
def texts() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(300)) for _ in range(20)]


@pytest.fixture(scope="session")
def store(tiny_model, texts, tmp_path_factory):
    """3,000 tokens of ``blocks.1.mlp.hook_post`` in rows of 40, shards of 700 (rows straddle shards)."""
    return harvest(tiny_model, HOOK, texts, tmp_path_factory.mktemp("store"), n_tokens=3000, seq_len=41,
                   batch_size=8, shard_tokens=700, progress=False)
