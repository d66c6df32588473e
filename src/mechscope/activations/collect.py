"""Reading activations during a forward pass: which tokens to keep, and stopping early.

::

    keep = keep_mask(model, batch)                                   # no BOS, no padding
    resid, mlp = collect(model, ["blocks.3.hook_resid_post", "blocks.3.hook_mlp_out"], batch, keep)

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from mechscope.errors import HookPointError, InputError
from mechscope.hooks.tokens import TokenBatch


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
    keep_here = keep.to(model.device)
    return read_points(model, names, batch, lambda tensor: tensor[keep_here].flatten(1).cpu())


@torch.no_grad()
def read_points(model, names: Sequence[str], batch: TokenBatch, read: Callable[[Tensor], Tensor]) -> list[Tensor]:
    """``read(activation)`` at each named point, in the order of ``names``, running the
    model no further than the deepest of them (see the module docstring)."""
    found: dict[str, Tensor] = {}

    def hook(tensor: Tensor, point) -> None:
        found[point.name] = read(tensor.detach())
        if len(found) == len(names):
            raise _StopForward

    try:
        with model.hooks(fwd=[(name, hook) for name in names]):
            model.forward(batch)
    except _StopForward:
        pass
    missing = [name for name in names if name not in found]
    if missing:  # pragma: no cover - every point with a pos dim fires in a forward pass
        raise HookPointError(f"hook points {missing} did not fire during the forward pass")
    return [found[name] for name in names]
