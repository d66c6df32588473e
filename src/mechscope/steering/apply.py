"""Applying a steering vector: add ``alpha`` times its directions while the model runs.

::

    with steer(model, vector, alpha=4.0):                    # every layer the vector has
        generate(model, "I went up to my friend and said", max_new_tokens=20)
    with steer(model, vector, alpha=4.0, layers=[12], from_position=5):
        model(prompt)

Directions are added at the vector's hook points (``layers`` picks some of them), at
every position from ``from_position`` on, or only at ``positions``. Positions are
absolute (prompt tokens first, counted from the batch's first column, so left padding
counts) and stay absolute under the KV cache: the hook learns each forward call's cache
offset, so a step of cached generation at position 17 is steered exactly as position 17
of an uncached run. Steering a residual-stream point under the cache is exact: earlier
positions' keys and values were computed from the steered residual when first seen.

The vector is checked against the model first (:meth:`SteeringVector.check_fits`), so a
vector made on another model, or for another hook point, is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from mechscope.errors import InputError, check_int
from mechscope.sae.splice import tracked_inputs
from mechscope.steering.vector import SteeringVector

DEFAULT_DEPTH = 0.4
"""Where to steer when not told: this fraction of the way through the layers."""
DEFAULT_ALPHA = 4.0
"""How hard to steer when not told (a multiple of the vector)."""


def default_layer(model) -> int:
    """The layer steered when none is given: :data:`DEFAULT_DEPTH` of the way through."""
    return min(model.cfg.n_layers - 1, round(DEFAULT_DEPTH * model.cfg.n_layers))


@contextmanager
def steer(
    model,
    vector: SteeringVector,
    *,
    alpha: float = 1.0,
    layers: int | Sequence[int] | None = None,
    from_position: int = 0,
    positions: Sequence[int] | None = None,
) -> Iterator:
    """Inside the block, add ``alpha * direction`` at each of the vector's hook points (or
    those at ``layers``), at positions ``>= from_position`` (or exactly ``positions``)."""
    check_int("from_position", from_position, minimum=0)
    if positions is not None:
        positions = sorted({int(p) for p in positions})
        if not positions or positions[0] < 0:
            raise InputError(f"positions must be non-negative absolute positions; received {positions!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise InputError(f"alpha must be a number; received {alpha!r}")
    chosen = vector if layers is None else vector.at(layers)
    chosen.check_fits(model)
    wanted = None if positions is None else torch.tensor(positions)

    with tracked_inputs(model) as state:

        def add(x: Tensor, hook) -> Tensor:
            flat = x.reshape(*x.shape[:2], -1)
            where = state.offset + torch.arange(x.shape[1], device=x.device)
            on = where >= from_position
            if wanted is not None:
                on &= torch.isin(where, wanted.to(x.device))
            step = float(alpha) * chosen.directions[hook.name].to(flat)
            return (flat + on.to(flat.dtype)[None, :, None] * step).reshape(x.shape)

        with model.hooks(fwd=[(name, add) for name in chosen.hook_names]):
            yield model
