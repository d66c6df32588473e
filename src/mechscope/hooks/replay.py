"""Re-running the blocks from any layer, and from any position, without the prefix.

A patching sweep changes one activation at layer L (and position p) and asks what the
model then outputs. Everything before layer L, and every position before p, is the same
as in the unpatched run, so recomputing it is waste. This module re-runs only

    blocks L … N-1, on positions p … n-1

from the unpatched run's residual at layer L, with the keys and values of positions
< p taken from that run (through mechscope's attention function), and reads the logits
out only where the metric needs them::

    with record_block_inputs(model) as inputs:
        _, cache = model.run_with_cache(batch, names=replay_names(model))
    logits = run_from(model, inputs, cache, layer=L, start=p, resid=new_resid, readout=pos)

Blocks are called as the modules they are, with the very arguments transformers gave
them in the recorded run (masks, rotary embeddings, position ids), sliced to the
positions kept and repeated over copies of the batch; hooks on the blocks fire as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import InputError


@dataclass
class BlockInputs:
    """What transformers passed each block besides the residual, in one recorded run."""

    calls: list[tuple[tuple, dict] | None] = field(default_factory=list)
    """Per layer: the positional arguments after the residual, and the keyword arguments."""
    n_batch: int = 0
    n_pos: int = 0


@contextmanager
def record_block_inputs(model) -> Iterator[BlockInputs]:
    """Record, during the runs inside the block, what each block receives."""
    inputs = BlockInputs(calls=[None] * model.cfg.n_layers)

    def recorder(layer: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            inputs.n_batch, inputs.n_pos = hidden.shape[:2]
            inputs.calls[layer] = (tuple(args[1:]), dict(kwargs))

        return hook

    adapter = model.adapter
    handles = [
        adapter.block(layer).register_forward_pre_hook(recorder(layer), with_kwargs=True)
        for layer in range(model.cfg.n_layers)
    ]
    try:
        yield inputs
    finally:
        for handle in handles:
            handle.remove()


def replay_names(model) -> list[str]:
    """The hook points a cache needs for :func:`run_from`: residuals, keys and values."""
    names = [f"blocks.{layer}.{kind}" for layer in range(model.cfg.n_layers)
             for kind in ("hook_resid_pre", "attn.hook_k", "attn.hook_v")]
    return names


def run_from(
    model,
    inputs: BlockInputs,
    cache,
    *,
    layer: int,
    resid: Float[Tensor, "rows pos d_model"] | None = None,
    start: int = 0,
    copies: int = 1,
    readout: Int[Tensor, "batch"] | None = None,
    fwd=(),
) -> Float[Tensor, "rows ..."]:
    """Run blocks ``layer`` … N-1 on positions ``start`` … n-1 and return logits.

    Args:
        inputs: block arguments recorded in the run that made ``cache``.
        cache: that run's cache, holding :func:`replay_names` (resid_pre, k, v).
        resid: the residual entering block ``layer`` for the kept positions, one row per
            (copy, prompt), copy-major; None repeats the cached one.
        start: first position to recompute; earlier positions' keys and values come from
            the cache, so nothing may change there.
        copies: how many copies of the batch the rows hold.
        readout: per prompt, the (absolute) position whose logits to return; it must not
            lie before ``start``. None returns logits at every kept position.
        fwd: forward hooks for this run (hook tensors have rows and kept positions).
    Returns:
        Logits (rows, d_vocab) at the readout positions, or (rows, kept_pos, d_vocab).
    """
    batch = inputs.n_batch
    if not 0 <= layer < model.cfg.n_layers:
        raise InputError(f"layer must be in 0..{model.cfg.n_layers - 1}; received {layer}")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise InputError(f"copies must be a positive integer; received {copies!r}")
    if resid is None:
        resid = cache["resid_pre", layer][:, start:].repeat(copies, 1, 1)
    if resid.shape[0] != copies * batch:
        raise InputError(f"resid must have {copies * batch} rows (copies x batch); received {tuple(resid.shape)}")
    return run_staggered(model, inputs, cache, layers=[layer] * copies, resids=list(resid.split(batch)),
                         start=start, readout=readout, fwd=fwd)


def run_staggered(
    model,
    inputs: BlockInputs,
    cache,
    *,
    layers: list[int],
    resids: list[Float[Tensor, "batch pos d_model"]],
    start: int = 0,
    readout: Int[Tensor, "batch"] | None = None,
    fwd=(),
) -> Float[Tensor, "rows ..."]:
    """:func:`run_from` for copies that start at different blocks, in one batch.

    Copy ``c`` (``batch`` rows) joins the batch at block ``layers[c]`` with the residual
    ``resids[c]`` (its kept positions) and runs to the end; ``layers`` must not decrease,
    so each copy's rows stay where they joined (rows ``c * batch …`` from its block on) and
    hooks can find them. Runs that would each be a thin batch (one restoration starting at
    its own layer) share the matrix products instead. Returns as :func:`run_from`, rows
    copy-major.
    """
    n_layers = model.cfg.n_layers
    if not layers or len(layers) != len(resids):
        raise InputError(f"give one start layer per residual; received {len(layers)} layers, {len(resids)} residuals")
    if any(b < a for a, b in zip(layers, layers[1:])) or not 0 <= layers[0] <= layers[-1] < n_layers:
        raise InputError(f"start layers must be non-decreasing in 0..{n_layers - 1}; received {layers}")
    if not 0 <= start < inputs.n_pos:
        raise InputError(f"start must be in 0..{inputs.n_pos - 1}; received {start}")
    first = layers[0]
    if any(call is None for call in inputs.calls[first:]):
        raise InputError("the recorded run did not reach every block; record a full forward first")
    batch = inputs.n_batch
    if readout is not None and int(readout.min()) < start:
        raise InputError(
            f"readout position {int(readout.min())} lies before start {start}: that logit is not recomputed; "
            f"start at or before the earliest readout position"
        )
    for resid in resids:
        if resid.shape[:2] != (batch, inputs.n_pos - start):
            raise InputError(f"each resid must have {batch} rows and {inputs.n_pos - start} positions; "
                             f"received {tuple(resid.shape)}")
    active = [sum(1 for at in layers if at <= i) for i in range(n_layers)]  # copies running block i
    prefixes = {}
    if start > 0:
        for i in range(first, n_layers):
            k, v = (cache[kind, i][:, :start].transpose(1, 2).repeat(active[i], 1, 1, 1) for kind in ("k", "v"))
            prefixes[i] = (k, v)
    hidden = None
    with model._hooks(fwd, (), (), prefixes=prefixes):
        for i in range(first, n_layers):
            joining = [resid for at, resid in zip(layers, resids) if at == i]
            if joining:  # (one residual alone is used as given: run_from's usual case copies nothing)
                parts = ([] if hidden is None else [hidden]) + joining
                hidden = parts[0] if len(parts) == 1 else torch.cat(parts)
            args, kwargs = inputs.calls[i]
            args = _fit(args, start, active[i], batch, inputs.n_pos)
            kwargs = _fit(kwargs, start, active[i], batch, inputs.n_pos)
            out = model.adapter.block(i)(hidden, *args, **kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        if readout is None:
            return _unembed(model, hidden)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        picked = hidden[rows, readout.to(hidden.device).repeat(len(layers)) - start]
        return _unembed(model, picked.unsqueeze(1))[:, 0]


def _unembed(model, resid: Tensor) -> Tensor:
    adapter = model.adapter
    return adapter.module(adapter.unembed_path)(adapter.norm(None, "ln_final")(resid))


def _fit(value, start: int, copies: int, batch: int, n_pos: int):
    """Slice a recorded block argument to positions ``start:`` and repeat it over copies.

    A 4-d (…, query, key) mask keeps query rows ``start:`` and every key (the prefix keys
    are still attended to); rotary tables and position ids (batch pos …) keep ``start:``,
    and so do 1-d per-position tensors. (A None mask means plain causal attention; the
    attention function makes it explicit when queries no longer start at 0.)
    """
    if isinstance(value, dict):
        return {key: _fit(item, start, copies, batch, n_pos) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_fit(item, start, copies, batch, n_pos) for item in value)
    if not isinstance(value, Tensor):
        return value
    if value.dim() == 4 and value.shape[-2:] == (n_pos, n_pos):
        value = value[..., start:, :]
    elif value.dim() >= 2 and value.shape[1] == n_pos:
        value = value[:, start:]
    elif value.dim() == 1 and value.shape[0] == n_pos:
        return value[start:]
    if value.dim() >= 2 and copies > 1 and value.shape[0] == batch and batch > 1:
        value = value.repeat(copies, *([1] * (value.dim() - 1)))
    return value
