"""Word lists filtered through a model's tokenizer, shared by the task generators.

A generated prompt pair must tokenize to the same length, and an answer must be one
token. Rather than hard-coding one tokenizer's vocabulary, each generator keeps only the
candidate words that *this* model's tokenizer encodes as a single token after a space,
so the same generator works on GPT-style byte-level BPE (SmolLM2, GPT-2) and on
SentencePiece (Gemma)::

    names = single_token_words(model, ["Mary", "John", "Christopher"], min_count=2, what="IOI names")
    # SmolLM2 keeps all three; a tokenizer that splits " Christopher" drops it
"""

from __future__ import annotations

from collections.abc import Sequence

from mechscope.errors import InputError


def is_single_token(tokenizer, text: str) -> bool:
    """Whether ``text`` is exactly one known token (not the unknown token) that decodes back to itself."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or (tokenizer.unk_token_id is not None and ids[0] == tokenizer.unk_token_id):
        return False
    # Word-level tokenizers decode without the leading space; compare the words only.
    return tokenizer.decode(ids).strip() == text.strip()


def single_token_words(model, words: Sequence[str], *, min_count: int, what: str) -> list[str]:
    """The ``words`` that are one token after a space (``" Mary"``), in their given order."""
    kept = [word for word in words if is_single_token(model.tokenizer, " " + word)]
    if len(kept) < min_count:
        raise InputError(
            f"the {what} need at least {min_count} words that {model.name}'s tokenizer encodes as one token "
            f"after a space; found {len(kept)} of {len(words)} ({', '.join(kept[:5]) or 'none'}). This tokenizer's "
            f"vocabulary does not cover the built-in word lists; write the task as a JSONL/CSV file instead "
            f"(mechscope.tasks.load_task)"
        )
    return kept


def check_count(n: int) -> None:
    """Refuse a prompt count that is not a positive integer."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n (the number of prompt pairs) must be a positive integer; received {n!r}")
