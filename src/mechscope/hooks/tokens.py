"""Token batches: ids plus the attention mask that padding needs.

A padded batch must give each prompt the same result as running it alone. That takes
two things Hugging Face leaves to the caller: the attention mask (so no real token
attends to padding) and position ids that restart at 0 on each prompt's first real token
(so left padding does not shift positions)::

    batch = model.tokenize(["Hi", "Hello there"], padding_side="left")
    batch.ids             # (2, 3) with one pad on the left of "Hi"
    batch.position_ids()  # [[0, 0, 1], [0, 1, 2]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from mechscope.errors import InputError


@dataclass(frozen=True)
class TokenBatch:
    """Token ids of one or more prompts, padded to one length."""

    ids: Int[Tensor, "batch pos"]
    """Token ids; padding positions hold the tokenizer's pad id."""
    attention_mask: Int[Tensor, "batch pos"]
    """1 on real tokens, 0 on padding."""

    def __post_init__(self) -> None:
        if self.ids.shape != self.attention_mask.shape:
            raise InputError(
                f"ids and attention_mask must have the same shape; received {tuple(self.ids.shape)} "
                f"and {tuple(self.attention_mask.shape)}"
            )

    @property
    def has_padding(self) -> bool:
        return not bool(self.attention_mask.bool().all())

    def position_ids(self) -> Int[Tensor, "batch pos"]:
        """Each real token's position within its own prompt (padding gets 0)."""
        return (self.attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def last_positions(self) -> Int[Tensor, "batch"]:
        """Index of each prompt's last real token, with left or right padding."""
        index = torch.arange(self.ids.shape[1], device=self.ids.device)
        return (self.attention_mask.long() * (index + 1)).argmax(-1)

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(self.ids.to(device), self.attention_mask.to(device))


def tokenize(
    tokenizer,
    text: str | Sequence[str],
    *,
    prepend_bos: bool | None = None,
    padding_side: str = "right",
) -> TokenBatch:
    """Tokenize one prompt or a list of prompts into a padded :class:`TokenBatch`.

    ``prepend_bos=None`` keeps the tokenizer's own habit (Gemma's adds ``<bos>``,
    SmolLM2's and GPT-2's add nothing); True makes sure every prompt starts with BOS;
    False adds no special tokens.
    """
    prompts = [text] if isinstance(text, str) else list(text)
    if not prompts:
        raise InputError("no prompts given; pass a string or a non-empty list of strings")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise InputError(f"prompt {i} is a {type(prompt).__name__}, expected a string")
        if not prompt.strip():
            raise InputError(f"prompt {i} is empty; give some text to run the model on")
    if padding_side not in ("left", "right"):
        raise InputError(f"padding_side must be 'left' or 'right'; received {padding_side!r}")
    rows = [_encode(tokenizer, prompt, prepend_bos) for prompt in prompts]
    return batch_from_ids(rows, pad_id=pad_id(tokenizer), padding_side=padding_side)


def batch_from_ids(rows: Sequence[Sequence[int]], *, pad_id: int, padding_side: str = "left") -> TokenBatch:
    """Token-id lists of different lengths as one padded :class:`TokenBatch`."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if padding_side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(list(row), dtype=torch.long)
        mask[i, span] = 1
    return TokenBatch(ids, mask)


def bos_prefix(tokenizer, prepend_bos: bool | None) -> list[int]:
    """The special tokens a prompt starts with: ``[bos]`` or ``[]``.

    ``None`` follows the tokenizer's own habit (Gemma's adds ``<bos>``, SmolLM2's and
    GPT-2's add nothing), as :func:`tokenize` does; True requires a BOS token.
    """
    bos = tokenizer.bos_token_id
    if prepend_bos is None:
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
        return [bos] if bos is not None and ids and ids[0] == bos else []
    if not prepend_bos:
        return []
    if bos is None:
        raise InputError("prepend_bos=True but this tokenizer has no BOS token; use prepend_bos=None")
    return [bos]


def _encode(tokenizer, prompt: str, prepend_bos: bool | None) -> list[int]:
    ids = tokenizer(prompt, add_special_tokens=prepend_bos is not False)["input_ids"]
    if prepend_bos:
        bos = tokenizer.bos_token_id
        if bos is None:
            raise InputError("prepend_bos=True but this tokenizer has no BOS token; use prepend_bos=None")
        if not ids or ids[0] != bos:
            ids = [bos, *ids]
    if not ids:
        raise InputError(f"prompt {prompt!r} tokenizes to no tokens")
    return list(ids)


def pad_id(tokenizer) -> int:
    """The id padding uses: the pad token, else EOS, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
