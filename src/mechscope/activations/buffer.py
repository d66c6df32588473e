"""Activations on the fly: run the model only as far as it must (:func:`~mechscope.activations.collect.collect`),
and mix tokens in a buffer.

::

    buffer = MixingBuffer(model, "blocks.15.hook_resid_post", texts, buffer_tokens=2**16)
    for x in buffer.batches(4096, seed=0):          # (4096, 576), no store on disk
        ...

**Mixing.** Consecutive tokens of one row are strongly correlated, so batches are drawn
from a shuffled buffer (as in SAELens): fill ``buffer_tokens`` tokens, shuffle, hand out
half, refill, and so on; at the end of the stream what is left is shuffled and handed
out in whole batches (the last partial batch is dropped). Rows are also visited in an
order shuffled by ``seed``.

**Reproducibility.** ``batches(batch_size, seed=s, start=n)`` yields exactly the batches
``n, n+1, …`` of ``batches(batch_size, seed=s)``: it re-runs the model over the first
``n · batch_size`` kept tokens (plus up to one buffer) without yielding them, so
resuming late in an epoch costs as much model time as the batches skipped. For a cheap
resume harvest a store once (:func:`mechscope.activations.harvest.harvest`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import Tensor

from mechscope.activations.collect import check_hooks, collect, hook_width, keep_mask
from mechscope.activations.source import Batch
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch


class MixingBuffer:
    """An :class:`~mechscope.activations.source.ActivationSource` that runs the model as it goes.

    One hook name gives tensors ``(batch, d_in)``; two give pairs (input, target) for a
    transcoder. An epoch is one pass over the rows of ``split`` (or over ``n_tokens``
    kept tokens, if given)."""

    def __init__(
        self,
        model,
        hook_names: str | Sequence[str],
        texts: str | Iterable[str],
        *,
        buffer_tokens: int = 2**16,
        n_tokens: int | None = None,
        seq_len: int = 128,
        model_batch_size: int = 8,
        exclude_bos: bool = True,
        exclude_padding: bool = True,
        prepend_bos: bool | None = True,
        pack: bool = True,
        split: str = "train",
    ) -> None:
        from mechscope.corpus import token_rows

        for field, value in (("buffer_tokens", buffer_tokens), ("model_batch_size", model_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"MixingBuffer.{field} must be a positive integer; received {value!r}")
        if n_tokens is not None and (isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 1):
            raise InputError(f"MixingBuffer.n_tokens must be a positive integer or None; received {n_tokens!r}")
        self.model = model
        self.hook_names = check_hooks(model, hook_names)
        self.d_in = hook_width(model, self.hook_names[0])
        """Width of the inputs."""
        self.d_out = hook_width(model, self.hook_names[-1])
        """Width of the targets (of the inputs, with one hook point)."""
        self.buffer_tokens, self.n_tokens, self.model_batch_size = buffer_tokens, n_tokens, model_batch_size
        # Tokenized once, in a fixed order; each seed then visits the rows in its own order.
        self.rows = token_rows(model, texts, seq_len=seq_len, split=split, prepend_bos=prepend_bos, pack=pack)
        self.keep = keep_mask(model, self.rows, exclude_bos=exclude_bos, exclude_padding=exclude_padding)

    def batches(self, batch_size: int, *, seed: int = 0, start: int = 0) -> Iterator[Batch]:
        """Shuffled batches of one epoch for ``seed``, from batch index ``start`` on."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size:
            raise InputError(f"batch_size must be a positive integer; received {batch_size!r}")
        if batch_size * 2 > self.buffer_tokens:
            raise InputError(
                f"batch_size ({batch_size}) must be at most half of buffer_tokens ({self.buffer_tokens}), "
                f"since half the buffer is handed out at a time; raise buffer_tokens"
            )
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InputError(f"start must be a non-negative integer; received {start!r}")
        return self._batches(batch_size, seed, start)

    def _batches(self, batch_size: int, seed: int, start: int) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(seed)
        index = 0
        for tokens in self._mixed(self._stream(seed), batch_size, generator):
            if index >= start:
                yield tokens[:, : self.d_in] if len(self.hook_names) == 1 else (
                    tokens[:, : self.d_in], tokens[:, self.d_in :])
            index += 1

    def _stream(self, seed: int) -> Iterator[Tensor]:
        """Kept tokens of each model batch, input and target side by side."""
        order = torch.randperm(len(self.rows.ids), generator=torch.Generator().manual_seed(seed))
        left = self.n_tokens
        for first in range(0, len(order), self.model_batch_size):
            rows = order[first : first + self.model_batch_size]
            batch = TokenBatch(self.rows.ids[rows], self.rows.attention_mask[rows])
            acts = torch.cat(collect(self.model, self.hook_names, batch, self.keep[rows]), dim=1)
            if left is not None:
                acts, left = acts[:left], left - len(acts[:left])
            yield acts
            if left == 0:
                return

    def _mixed(self, stream: Iterator[Tensor], batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
        pool: list[Tensor] = []
        held = 0
        for acts in stream:
            pool.append(acts)
            held += len(acts)
            if held < self.buffer_tokens:
                continue
            tokens = torch.cat(pool)
            tokens = tokens[torch.randperm(len(tokens), generator=generator)]
            n_out = len(tokens) // 2 // batch_size * batch_size
            yield from tokens[:n_out].split(batch_size)
            pool, held = [tokens[n_out:]], len(tokens) - n_out
        if held:
            tokens = torch.cat(pool)
            tokens = tokens[torch.randperm(len(tokens), generator=generator)]
            yield from tokens[: len(tokens) // batch_size * batch_size].split(batch_size)
