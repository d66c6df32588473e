"""A word-level model over a small random-sentence corpus, built in milliseconds."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

from mechscope import HookedModel

WORDS = [f"word{i}" for i in range(200)]


@pytest.fixture(scope="session")
def texts() -> list[str]:
    """20 documents of 300 random words each."""
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(300)) for _ in range(20)]


@pytest.fixture(scope="session")
def corpus_model() -> HookedModel:
    vocab = ["[PAD]", "[BOS]", "[EOS]", "[UNK]", *WORDS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", unk_token="[UNK]"
    )
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return HookedModel(AutoModelForCausalLM.from_config(config).eval(), tokenizer, name="corpus-words")
