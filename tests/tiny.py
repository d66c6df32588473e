"""Tiny random-weight models of every supported family, built in memory in milliseconds.

Weights are re-drawn with a larger spread than Hugging Face's initialisation (and norm
weights and biases away from 1 and 0) so that activations are far from uniform and a
wrong formula shows up as a large difference, not a 1e-7 one.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from mechscope.tasks import Task

WORDS = (
    "when mary and john went to the store , gave a drink tom alice bob paris eiffel tower is located "
    "in city of rome berlin cat dog sat on mat big small red blue one two three four five six seven"
).split()
VOCAB = ["[PAD]", "[BOS]", "[UNK]", *WORDS] + [f"w{i}" for i in range(128 - 3 - len(WORDS))]
D_VOCAB = len(VOCAB)

_COMMON = dict(vocab_size=D_VOCAB, max_position_embeddings=64, num_hidden_layers=2, hidden_size=64,
               num_attention_heads=4, intermediate_size=96, pad_token_id=0, bos_token_id=1, eos_token_id=0)

CONFIGS = {
    "gpt2": lambda: GPT2Config(n_embd=64, n_head=4, n_layer=2, n_positions=64, n_inner=96, vocab_size=D_VOCAB,
                               bos_token_id=1, eos_token_id=0, pad_token_id=0),
    "llama-mha": lambda: LlamaConfig(**_COMMON, num_key_value_heads=4),
    "llama-gqa": lambda: LlamaConfig(**_COMMON, num_key_value_heads=2),
    "qwen2-gqa": lambda: Qwen2Config(**_COMMON, num_key_value_heads=2),
    "mistral-gqa": lambda: MistralConfig(**_COMMON, num_key_value_heads=1, sliding_window=None),
    "gemma3-gqa": lambda: Gemma3TextConfig(
        **{**_COMMON, "num_hidden_layers": 3}, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
        sliding_window=4, layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
    "gemma3-mha": lambda: Gemma3TextConfig(
        **_COMMON, num_key_value_heads=4, head_dim=16, query_pre_attn_scalar=16,
        sliding_window=4, layer_types=["sliding_attention", "full_attention"]),
    "neox-parallel": lambda: GPTNeoXConfig(**_COMMON, rotary_pct=0.25, use_parallel_residual=True),
    "neox-sequential": lambda: GPTNeoXConfig(**_COMMON, rotary_pct=0.5, use_parallel_residual=False),
}
ARCHS = tuple(CONFIGS)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    word_level = models.WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token="[UNK]")
    tok = Tokenizer(word_level)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", unk_token="[UNK]")


def tiny_hf_model(arch: str, attn_implementation: str = "sdpa", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch](), attn_implementation=attn_implementation)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if param.dim() == 1 and ("norm" in name or ".ln" in name):
                base = 0.0 if "gemma" in arch and name.endswith("weight") else float(name.endswith("weight"))
                param.copy_(base + 0.2 * noise)
            elif param.dim() == 1:
                param.copy_(0.1 * noise)
            else:
                param.copy_(noise / param.shape[-1] ** 0.5 * (0.5 if "embed" in name or "wte" in name else 1.0))
    return model.eval()


# A tiny IOI-like task that the word tokenizer can express (patching and circuit tests).
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
