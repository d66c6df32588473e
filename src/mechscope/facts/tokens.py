"""Where the subject lies in a tokenized prompt.

::

    subject_span(model, "The Eiffel Tower is located in the city of", "Eiffel Tower")   # range(1, 4)

The span is found from the tokenizer's character offsets (the tokens whose characters
overlap the subject's first occurrence), so it is right for byte-level BPE and
SentencePiece alike, with or without a BOS token in front.
"""

from __future__ import annotations

from mechscope.errors import InputError


def subject_span(model, prompt: str, subject: str, *, after: int = 0) -> range:
    """Token positions of ``subject`` in ``model.tokenize(prompt)`` (BOS included); the
    subject's first occurrence at or after character ``after``."""
    start = prompt.find(subject, after) if subject else -1
    if start < 0:
        raise InputError(
            f"the subject {subject!r} does not occur in the prompt {prompt!r}; write the subject exactly as in the prompt"
        )
    end = start + len(subject)
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(f"{model.name}'s tokenizer gives no character offsets (not a fast tokenizer)")
    offsets = tokenizer(prompt, return_offsets_mapping=True)["offset_mapping"]
    inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
    if not inside:
        raise InputError(f"no token of {prompt!r} covers the subject {subject!r}")
    return range(inside[0], inside[-1] + 1)
