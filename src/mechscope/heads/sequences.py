"""Repeated random tokens: the probe on which attention-head roles show themselves.

Each sequence is ``[BOS] r r``: ``r`` is ``seq_len`` tokens drawn at random from the
vocabulary (special tokens excluded, no token twice within one ``r``), then the same
tokens again. On the second copy nothing but the first copy predicts the next token, so
a head's attention there says what it does, not what it knows::

    seqs = repeated_tokens(model, n_seqs=8, seq_len=40, seed=0)
    seqs.ids.shape          # (8, 81): BOS, 40 random tokens, the same 40 again
    seqs.first, seqs.second # positions of the two copies: slice(1, 41), slice(41, 81)

Drawing without replacement within ``r`` makes "the earlier occurrence of this token"
one position, so a perfect duplicate-token or induction head scores exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel


@dataclass(frozen=True)
class RepeatedTokens:
    """A batch of ``[BOS] r r`` sequences of random tokens."""

    ids: Int[Tensor, "batch pos"]
    """Token ids, on the model's device."""
    prefix_len: int
    """Positions before the first copy: 1 with a BOS token, else 0."""
    seq_len: int
    """Length of one copy ``r``."""

    @property
    def first(self) -> slice:
        """Positions of the first copy."""
        return slice(self.prefix_len, self.prefix_len + self.seq_len)

    @property
    def second(self) -> slice:
        """Positions of the second copy."""
        return slice(self.prefix_len + self.seq_len, self.prefix_len + 2 * self.seq_len)


def ordinary_token_ids(tokenizer, d_vocab: int) -> Tensor:
    """Ids a random sequence may use: in the tokenizer and the embedding, not special."""
    special = set(tokenizer.all_special_ids)
    usable = min(len(tokenizer), d_vocab)
    return torch.tensor([t for t in range(usable) if t not in special], dtype=torch.long)


def repeated_tokens(
    model: HookedModel, *, n_seqs: int = 8, seq_len: int = 40, seed: int = 0, prepend_bos: bool = True
) -> RepeatedTokens:
    """``n_seqs`` sequences ``[BOS] r r`` with ``r`` of ``seq_len`` distinct random tokens.

    ``prepend_bos=True`` starts each sequence with the tokenizer's BOS token when it has
    one, whatever the tokenizer does on text (heads park attention on it, as they do on
    real text; TransformerLens' head detectors do the same); False never adds it.
    Seeded with its own generator: the same arguments give the same tokens everywhere.
    """
    if n_seqs < 1:
        raise InputError(f"n_seqs must be at least 1; received {n_seqs}")
    if seq_len < 2:
        raise InputError(f"seq_len must be at least 2 (a repeat needs a next token); received {seq_len}")
    bos = model.tokenizer.bos_token_id
    prefix = [int(bos)] if prepend_bos and bos is not None else []
    n_pos = len(prefix) + 2 * seq_len
    if n_pos > model.cfg.n_ctx:
        raise InputError(
            f"a repeated sequence of seq_len={seq_len} takes {n_pos} positions but {model.name} has "
            f"{model.cfg.n_ctx}; pass seq_len <= {(model.cfg.n_ctx - len(prefix)) // 2}"
        )
    pool = ordinary_token_ids(model.tokenizer, model.cfg.d_vocab)
    if seq_len > len(pool):
        raise InputError(
            f"seq_len={seq_len} distinct tokens are needed but the vocabulary has only {len(pool)} "
            f"ordinary tokens; pass seq_len <= {len(pool)}"
        )
    generator = torch.Generator().manual_seed(seed)
    rows = [pool[torch.randperm(len(pool), generator=generator)[:seq_len]] for _ in range(n_seqs)]
    r = torch.stack(rows)
    ids = torch.cat([torch.tensor(prefix, dtype=torch.long).expand(n_seqs, len(prefix)), r, r], dim=1)
    return RepeatedTokens(ids=ids.to(model.device), prefix_len=len(prefix), seq_len=seq_len)
