"""One tiny model (Llama with grouped-query attention) for tests that need no family sweep."""

from __future__ import annotations

import pytest
from tiny import tiny_hf_model

from mechscope import HookedModel


@pytest.fixture
def llama(tokenizer) -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tokenizer, name="llama-gqa")
