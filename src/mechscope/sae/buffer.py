"""Activations on the fly: run the model only as far as it must, and mix tokens in a buffer.

::

    buffer = MixingBuffer(model, "blocks.15.hook_resid_post", texts, buffer_tokens=2**16)
    for x in buffer.batches(4096, seed=0):          # (4096, 576), no store on disk
        ...

**Stopping early.** :func:`collect` reads the requested hook points and raises a private
exception from the hook that fills the last of them, so the blocks after the deepest
point never run (for ``blocks.15.hook_resid_post`` of a 30-layer model, about half the
forward pass); the hooks come off in ``finally`` as always. Which point fires last is
learned by counting, not assumed from the names' order.

**Which tokens.** :func:`keep_mask` drops BOS tokens and padding by default. The first
position of a row is an attention sink whose residual stream is an outlier (in
SmolLM2-135M its norm at layer 15 is ~25,000 against a median of ~170), and padding is
not text; both would dominate a reconstruction loss. Rows start with BOS by default
(``prepend_bos=True``) so that the sink is a token that can be dropped.

**Mixing.** Consecutive tokens of one row are strongly correlated, so batches are drawn
from a shuffled buffer (as in SAELens): fill ``buffer_tokens`` tokens, shuffle, hand out
half, refill, and so on; at the end of the stream what is left is shuffled and handed
out in whole batches (the last partial batch is dropped). Rows are also visited in an
order shuffled by ``seed``.

**Reproducibility.** ``batches(batch_size, seed=s, start=n)`` yields exactly the batches
``n, n+1, …`` of ``batches(batch_size, seed=s)``: it re-runs the model over the first
``n · batch_size`` kept tokens (plus up to one buffer) without yielding them, so
resuming late in an epoch costs as much model time as the batches skipped. For a cheap
resume harvest a store once (:func:`mechscope.sae.harvest.harvest`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from mechscope.errors import HookPointError, InputError
from mechscope.hooks.tokens import TokenBatch

Batch = Tensor | tuple[Tensor, Tensor]


class _StopForward(Exception):
    """Raised by a hook once every requested point is read, to end the forward pass."""


def check_hooks(model, hook_names: str | Sequence[str]) -> tuple[str, ...]:
    """Exact, distinct hook point names that have a token (``pos``) dimension; one or two."""
    names = (hook_names,) if isinstance(hook_names, str) else tuple(hook_names)
    if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
        raise InputError(
            f"expected one hook point (an autoencoder) or two distinct ones (a transcoder's input and "
            f"target); received {list(names)!r}"
        )
    for name in names:
        point = model.hook_point(name)  # unknown names raise HookPointError with the closest ones
        if point.dims[:2] != ("batch", "pos"):
            raise HookPointError(
                f"{name} has dims ({' '.join(point.dims)}); activations are harvested per token, so pick a "
                f"point whose dims start with 'batch pos' (e.g. blocks.0.hook_resid_post, blocks.0.attn.hook_z)"
            )
    return names


def hook_width(model, name: str) -> int:
    """Numbers per token at a hook point: the product of its dims after ``batch pos``."""
    cfg = model.cfg
    sizes = {"d_model": cfg.d_model, "d_mlp": cfg.d_mlp, "head": cfg.n_heads, "kv_head": cfg.n_kv_heads,
             "d_head": cfg.d_head, "d_vocab": cfg.d_vocab, "1": 1}
    width = 1
    for dim in model.hook_point(name).dims[2:]:
        width *= sizes[dim]
    return width


def keep_mask(
    model, batch: TokenBatch, *, exclude_bos: bool = True, exclude_padding: bool = True
) -> Bool[Tensor, "batch pos"]:
    """Which tokens to keep: not BOS (by id) and not padding (by the attention mask)."""
    keep = torch.ones_like(batch.ids, dtype=torch.bool)
    bos = model.tokenizer.bos_token_id
    if exclude_bos and bos is not None:
        keep &= batch.ids != bos
    if exclude_padding:
        keep &= batch.attention_mask.bool()
    return keep


@torch.no_grad()
def collect(
    model, names: Sequence[str], batch: TokenBatch, keep: Bool[Tensor, "batch pos"]
) -> list[Float[Tensor, "kept width"]]:
    """Activations of the kept tokens at each named point (row-major order of ``keep``),
    flattened to ``(kept, width)`` on the CPU, running the model no further than needed."""
    found: dict[str, Tensor] = {}
    keep_here = keep.to(model.device)

    def read(tensor: Tensor, hook) -> None:
        found[hook.name] = tensor.detach()[keep_here].flatten(1).cpu()
        if len(found) == len(names):
            raise _StopForward

    try:
        with model.hooks(fwd=[(name, read) for name in names]):
            model.forward(batch)
    except _StopForward:
        pass
    missing = [name for name in names if name not in found]
    if missing:  # pragma: no cover - every point with a pos dim fires in a forward pass
        raise HookPointError(f"hook points {missing} did not fire during the forward pass")
    return [found[name] for name in names]


class MixingBuffer:
    """An :class:`~mechscope.sae.source.ActivationSource` that runs the model as it goes.

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
