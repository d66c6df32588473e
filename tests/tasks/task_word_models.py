"""Word-level models whose vocabulary covers the built-in task generators' words.

The shared ``tiny`` tokenizer knows only a few lowercase words, so the generators would
find no names there. :func:`word_model` builds a word-level tokenizer from the
generators' own word lists (minus :data:`LEFT_OUT`, to check that generators filter by
the tokenizer) and a one-layer random Llama over it, in milliseconds.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

from mechscope import HookedModel
from mechscope.tasks import factual, greater_than, ioi, sva

SPECIAL = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]
LEFT_OUT = {"Christopher", "Jessica", "Paris"}
"""Words the test vocabulary leaves out: no generated prompt or answer may use them."""


def generator_texts() -> list[str]:
    texts = [*ioi.IOI_TEMPLATES, *ioi.NAMES, *ioi.PLACES, *ioi.OBJECTS]
    texts += [greater_than.GREATER_THAN_TEMPLATE, *greater_than.NOUNS]
    for relation in factual.RELATIONS.values():
        texts += [relation.template, *(word for fact in relation.facts for word in fact)]
    for template, singular, plural in sva.SVA_TEMPLATES:
        texts += [template, singular, plural]
    texts += [word for pair in sva.NOUNS for word in pair]
    return texts


def word_model(texts: list[str], *, digits: str = "single", left_out=frozenset()) -> HookedModel:
    """A random one-layer Llama with a word-level tokenizer over the words of ``texts``.

    ``digits="single"`` splits numbers into digits (like SmolLM2 and Gemma),
    ``"pairs"`` into two-digit tokens (like GPT-2's " 17" "32")."""
    split = (pre_tokenizers.Digits(individual_digits=True) if digits == "single"
             else pre_tokenizers.Split(Regex(r"\d\d"), behavior="isolated"))
    pre = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), split])
    words = {word for text in texts for word, _ in pre.pre_tokenize_str(text)} - set(left_out)
    words |= {str(d) for d in range(10)} if digits == "single" else {f"{d:02d}" for d in range(100)}
    vocab = SPECIAL + sorted(words)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", unk_token="[UNK]"
    )
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    hf_model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    return HookedModel(hf_model, tokenizer, name=f"words-{digits}")
