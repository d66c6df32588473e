"""Every row of a split at once, with its attention mask: the token stream a harvest walks.

::

    rows = token_rows(model, texts, seq_len=128, prepend_bos=True)        # packed: no padding
    rows.ids[:8]                                                           # the first model batch
    loose = token_rows(model, texts, seq_len=128, pack=False)              # one document per row

``pack=True`` gives exactly the rows of :func:`token_batches` with the same arguments, in
the same order (any batch size), as one :class:`TokenBatch` whose mask is all ones.

``pack=False`` never lets a row span two documents: each document (with its EOS) is cut
into pieces of ``seq_len`` tokens (less the BOS prefix), each piece is a row, and the
last piece of a document is right-padded with the pad id, mask 0. Rows fall in the
held-out split by the same hash of their text tokens as packed rows, and ``seed``
shuffles them the same way. Padding costs compute (a 40-token document takes a
128-token row), which is why packing is the default.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from mechscope.corpus.batches import HELDOUT_EVERY, check_row_args, document_ids, is_heldout, token_batches
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch, bos_prefix, pad_id


def token_rows(
    model,
    texts: str | Iterable[str],
    *,
    seq_len: int = 128,
    split: str = "train",
    seed: int = 0,
    prepend_bos: bool | None = None,
    pack: bool = True,
) -> TokenBatch:
    """All rows of one split, shuffled by ``seed``: ids and mask ``(n_rows, seq_len)`` on the CPU."""
    check_row_args(model, seq_len=seq_len, batch_size=1, split=split)
    if pack:
        # batch_size only groups rows; the order is fixed by seed alone.
        ids = torch.cat(list(token_batches(model, texts, seq_len=seq_len, batch_size=1024, split=split,
                                           seed=seed, prepend_bos=prepend_bos)))
        return TokenBatch(ids, torch.ones_like(ids))
    prefix = bos_prefix(model.tokenizer, prepend_bos)
    length = seq_len - len(prefix)
    pad = pad_id(model.tokenizer)
    ids, mask = [], []
    for doc in document_ids(model.tokenizer, texts):
        for first in range(0, len(doc), length):
            body = doc[first : first + length]
            if is_heldout(body) != (split == "heldout"):
                continue
            row = prefix + body
            ids.append(row + [pad] * (seq_len - len(row)))
            mask.append([1] * len(row) + [0] * (seq_len - len(row)))
    if not ids:
        raise InputError(f"the text gives no {split} rows (about 1 row in {HELDOUT_EVERY} is held out); give more text")
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    return TokenBatch(torch.tensor(ids, dtype=torch.long)[order], torch.tensor(mask, dtype=torch.long)[order])
