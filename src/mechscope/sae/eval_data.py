"""Token batches for SAE evaluation and dashboards: from text, ids, or TokenBatches, cut to a
token budget.

    batches = collect_batches(model, default_texts(), n_tokens=4096, split="heldout")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from mechscope.corpus import token_batches
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch

Data = str | Sequence[str] | Tensor | TokenBatch | Iterable[Tensor | TokenBatch]
"""Text (packed into rows of ``seq_len`` tokens), token ids (batch pos), a TokenBatch, or
an iterable of id tensors / TokenBatches."""


def collect_batches(
    model,
    data: Data,
    *,
    n_tokens: int,
    seq_len: int = 128,
    batch_size: int = 8,
    split: str = "heldout",
    prepend_bos: bool | None = True,
) -> list[TokenBatch]:
    """Whole rows of ``data`` until ``n_tokens`` tokens (fewer if the data runs out); text
    is packed with :func:`mechscope.corpus.token_batches` on ``split``.

    Rows start with BOS by default, as :func:`mechscope.activations.harvest.harvest`'s do: the
    attention sink then falls on BOS (left out of the metrics) and the text tokens are
    distributed as in training. (SmolLM2's tokenizer adds no BOS of its own: without it
    the first text token of each row becomes the sink, with a norm ~100x the others.)"""
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 1:
        raise InputError(f"n_tokens must be a positive integer; received {n_tokens!r}")
    if isinstance(data, str) or (isinstance(data, Sequence) and data and all(isinstance(t, str) for t in data)):
        source: Iterable = token_batches(model, data, seq_len=seq_len, batch_size=batch_size, split=split,
                                              prepend_bos=prepend_bos)
    elif isinstance(data, (Tensor, TokenBatch)):
        source = [data]
    else:
        source = data
    batches, total = [], 0
    for item in source:
        batch = _as_batch(item)
        rows = batch.ids.shape[0]
        per_row = batch.ids.shape[1]
        need = -(-(n_tokens - total) // per_row)  # rows still needed, rounded up
        if need < rows:
            batch = TokenBatch(batch.ids[:need], batch.attention_mask[:need])
        batches.append(batch.to(model.device))
        total += batch.ids.numel()
        if total >= n_tokens:
            break
    if not batches:
        raise InputError("no tokens to evaluate on; give some text, token ids or TokenBatches")
    return batches


def _as_batch(item) -> TokenBatch:
    if isinstance(item, TokenBatch):
        return item
    if isinstance(item, Tensor) and item.dim() in (1, 2) and not item.is_floating_point():
        ids = item.long().reshape(-1, item.shape[-1])
        return TokenBatch(ids, torch.ones_like(ids))
    shape = tuple(item.shape) if isinstance(item, Tensor) else type(item).__name__
    raise InputError(f"expected token ids (batch pos) or a TokenBatch in the data; received {shape}")
