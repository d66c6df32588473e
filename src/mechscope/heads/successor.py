"""Successor heads (Gould et al.): OV circuits that map an ordinal token to the next one.

Attending to " Monday", a successor head writes " Tuesday"; to " 3", " 4"; to " C",
" D". The test, per Gould et al.: for each consecutive pair ``(a, b)`` of an ordinal
sequence, read the head's direct logits (:func:`~mechscope.heads.ov.direct_logit_map`)
from the value vector it computes at a position holding ``a``, and ask whether ``b``
gets the highest logit among that sequence's tokens::

    seqs = ordinal_sequences(model.tokenizer)    # the ones this tokenizer can spell
    scores = successor_scores(model, seqs)       # layer head, fraction of pairs won

Only items that are one token in this tokenizer take part (SmolLM2 splits " 1" into
" " and "1", so its digits enter as "1".."9"); a pair needs both items, and a sequence
needs at least three usable items (two would make a coin toss). Value vectors come from
running each item alone after BOS, the analogue in every layer of Gould et al.'s
context-free "effective embedding". A head that merely copies scores 0: its top token
is ``a`` itself. Chance is about ``1 / len(sequence)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.heads.ov import direct_logit_map, ov_logits, strict_top

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORDINAL_SEQUENCES: dict[str, tuple[str, ...]] = {
    "digits": tuple(f" {d}" for d in range(1, 10)),
    "digits, no space": tuple(str(d) for d in range(1, 10)),
    "number words": (" one", " two", " three", " four", " five", " six", " seven", " eight", " nine", " ten"),
    "ordinals": (" first", " second", " third", " fourth", " fifth", " sixth", " seventh", " eighth", " ninth",
                 " tenth"),
    "days": (" Monday", " Tuesday", " Wednesday", " Thursday", " Friday", " Saturday", " Sunday"),
    "months": (" January", " February", " March", " April", " May", " June", " July", " August", " September",
               " October", " November", " December"),
    "letters": tuple(f" {c}" for c in _LETTERS),
}
"""Ordinal sequences, in order, as text (no wrap-around: December has no successor here)."""


@dataclass(frozen=True)
class OrdinalSequence:
    """The items of one ordinal sequence that a tokenizer spells as single tokens."""

    name: str
    """Key in :data:`ORDINAL_SEQUENCES`."""
    texts: tuple[str, ...]
    """The usable items, in order."""
    token_ids: tuple[int, ...]
    """Their token ids."""
    pairs: tuple[tuple[int, int], ...]
    """``(i, i + 1)`` indices into ``texts`` of items that are consecutive in the full sequence."""


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of ``text`` if the tokenizer spells it as one ordinary token, else None."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] in tokenizer.all_special_ids:
        return None  # split, or the unknown token
    return ids[0] if tokenizer.decode(ids).strip() == text.strip() else None


def ordinal_sequences(
    tokenizer, sequences: dict[str, tuple[str, ...]] = ORDINAL_SEQUENCES, *, min_items: int = 3
) -> list[OrdinalSequence]:
    """The sequences with at least ``min_items`` single-token items and one usable pair."""
    found = []
    for name, texts in sequences.items():
        ids = [single_token_id(tokenizer, text) for text in texts]
        kept = [i for i, token in enumerate(ids) if token is not None]
        at = {full: short for short, full in enumerate(kept)}
        pairs = tuple((at[i], at[i + 1]) for i in kept if i + 1 in at)
        if len(kept) >= min_items and pairs:
            found.append(OrdinalSequence(name, tuple(texts[i] for i in kept), tuple(ids[i] for i in kept), pairs))
    return found


def _item_values(model: HookedModel, token_ids: list[int], prepend_bos: bool) -> list[Tensor]:
    """Per layer, the value vectors (item kv_head d_head) at each item, run alone after BOS."""
    ids = torch.tensor(token_ids, dtype=torch.long)[:, None]
    if prepend_bos:
        ids = torch.cat([torch.full_like(ids, model.tokenizer.bos_token_id), ids], dim=1)
    _, cache = model.run_with_cache(ids, names="blocks.*.attn.hook_v", positions=-1)
    return [cache["v", layer][:, 0] for layer in range(model.cfg.n_layers)]


def successor_scores(
    model: HookedModel, sequences: list[OrdinalSequence], *, prepend_bos: bool = True
) -> Float[Tensor, "layer head"]:
    """Fraction of successor pairs whose successor each head's OV output ranks first
    among its sequence's tokens; NaN everywhere if ``sequences`` has no pairs."""
    n_pairs = sum(len(seq.pairs) for seq in sequences)
    if n_pairs == 0:
        return torch.full((model.cfg.n_layers, model.cfg.n_heads), float("nan"))
    prepend_bos = prepend_bos and model.tokenizer.bos_token_id is not None
    all_ids = [token for seq in sequences for token in seq.token_ids]
    values = _item_values(model, all_ids, prepend_bos)
    wins = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer, layer_values in enumerate(values):
        start = 0
        for seq in sequences:
            rows = slice(start, start + len(seq.token_ids))
            start = rows.stop
            candidates = torch.tensor(seq.token_ids)
            logits = ov_logits(layer_values[rows], direct_logit_map(model, layer, candidates))  # head item cand
            source = torch.tensor([a for a, _ in seq.pairs])
            target = torch.tensor([b for _, b in seq.pairs])
            wins[layer] += strict_top(logits[:, source], target).sum(-1)
    return wins / n_pairs
