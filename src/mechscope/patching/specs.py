"""What a patching sweep patches: one :class:`Patch` per cell of the result.

``what`` names the sweep, as TransformerLens' ``get_act_patch_*`` functions do:

=============== ======================== ======================
what            hook point               result axes
=============== ======================== ======================
``resid``       ``hook_resid_pre``       layer pos
``attn``        ``hook_attn_out``        layer pos
``mlp``         ``hook_mlp_out``         layer pos
``heads``       ``attn.hook_z``          layer head  (all positions at once)
``heads_by_pos````attn.hook_z``          layer pos head
``q``           ``attn.hook_q``          layer head
``k`` / ``v``   ``attn.hook_k`` / ``_v`` layer kv_head (grouped-query: one per key/value head)
``pattern``     ``attn.hook_pattern``    layer head
=============== ======================== ======================

Any other per-layer hook kind (``mlp.hook_post``, ``hook_resid_mid``, ``ln2.hook_scale``
…) also works as ``what``: its whole activation at each position, by layer × position.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from mechscope.errors import InputError

SWEEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "resid": ("hook_resid_pre", ("layer", "pos")),
    "attn": ("hook_attn_out", ("layer", "pos")),
    "mlp": ("hook_mlp_out", ("layer", "pos")),
    "heads": ("attn.hook_z", ("layer", "head")),
    "heads_by_pos": ("attn.hook_z", ("layer", "pos", "head")),
    "q": ("attn.hook_q", ("layer", "head")),
    "k": ("attn.hook_k", ("layer", "head")),
    "v": ("attn.hook_v", ("layer", "head")),
    "pattern": ("attn.hook_pattern", ("layer", "head")),
}


@dataclass(frozen=True)
class Patch:
    """One activation to copy from the source run into the base run."""

    name: str
    """Hook point, e.g. ``blocks.3.attn.hook_z``."""
    layer: int
    pos: int | None
    """Position patched, or None for every position."""
    head: int | None
    """Index on the point's head (or kv_head) axis, or None for the whole activation."""
    cell: tuple[int, ...]
    """Where the patch's value goes in the result tensor."""


def check_what(what: str) -> None:
    """Refuse, without a model, a ``what`` that can name no sweep (a per-layer hook kind
    is checked against the model by :func:`make_sweep`)."""
    if what not in SWEEPS and "hook" not in what:
        raise InputError(f"unknown sweep {what!r}; expected one of {', '.join(SWEEPS)}, or a per-layer hook kind "
                         f"such as mlp.hook_post")


def _hook_kind(model, what: str) -> str:
    """A per-layer hook kind named as ``what`` (``mlp.hook_post``, or ``blocks.*.mlp.hook_post``)."""
    kind = re.sub(r"^blocks\.(\d+|\*)\.", "", what)
    check_what(what)
    point = model.hook_point(f"blocks.0.{kind}")  # unknown names fail here, listing the closest
    if "pos" not in point.dims and "query_pos" not in point.dims:
        raise InputError(f"{kind} has no position axis to sweep over")
    return kind


@dataclass(frozen=True)
class Sweep:
    """Every patch of one sweep, and the shape of its result."""

    what: str
    """The sweep's name (a key of :data:`SWEEPS`)."""
    patches: tuple[Patch, ...]
    dims: tuple[str, ...]
    """Result axes, e.g. ``("layer", "pos", "head")``."""
    shape: tuple[int, ...]
    layers: tuple[int, ...]
    """The layers covered (index ``i`` on the layer axis is layer ``layers[i]``)."""
    positions: tuple[int, ...]
    """The positions covered, on sweeps with a position axis."""


def make_sweep(
    model,
    what: str,
    *,
    n_pos: int,
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
) -> Sweep:
    """The patches of sweep ``what`` over ``layers`` and ``positions`` (default: all)."""
    kind, dims = SWEEPS[what] if what in SWEEPS else (_hook_kind(model, what), ("layer", "pos"))
    cfg = model.cfg
    if positions is not None and "pos" not in dims:
        with_pos = ", ".join(name for name, (_, d) in SWEEPS.items() if "pos" in d)
        raise InputError(f"sweep {what!r} patches all positions at once, so positions= does not apply; "
                         f"sweeps by position: {with_pos}")
    layers = tuple(range(cfg.n_layers)) if layers is None else tuple(layers)
    positions = tuple(range(n_pos)) if positions is None else tuple(positions)
    if not layers or not positions:
        raise InputError("layers= and positions= must not be empty; leave them out to cover everything")
    for layer in layers:
        if not 0 <= layer < cfg.n_layers:
            raise InputError(f"layer {layer} is outside 0..{cfg.n_layers - 1}")
    for pos in positions:
        if not 0 <= pos < n_pos:
            raise InputError(f"position {pos} is outside 0..{n_pos - 1} (the prompts have {n_pos} tokens)")
    n_heads = cfg.n_kv_heads if what in ("k", "v") else cfg.n_heads
    model.hook_point(f"blocks.{layers[0]}.{kind}")  # a clear error if this family lacks it
    patches = []
    for i, layer in enumerate(layers):
        name = f"blocks.{layer}.{kind}"
        if dims == ("layer", "pos"):
            patches += [Patch(name, layer, pos, None, (i, j)) for j, pos in enumerate(positions)]
        elif dims == ("layer", "head"):
            patches += [Patch(name, layer, None, head, (i, head)) for head in range(n_heads)]
        else:
            patches += [Patch(name, layer, pos, head, (i, j, head))
                        for j, pos in enumerate(positions) for head in range(n_heads)]
    shape_of = {"layer": len(layers), "pos": len(positions), "head": n_heads}
    return Sweep(
        what=what,
        patches=tuple(patches),
        dims=dims,
        shape=tuple(shape_of[d] for d in dims),
        layers=layers,
        positions=positions if "pos" in dims else (),
    )


def plan_runs(sweep: Sweep, first_answer: int, copies: int) -> list[tuple[int, int, list[Patch]]]:
    """How the fast path runs a sweep: ``(layer, start, patches)`` per batched run, in order.

    Patches that share a layer and a first position to recompute run together, up to
    ``copies`` at a time. A patch at position p changes nothing before p; recomputing from
    p, or from the earliest answer position if that comes first (its logits must be
    recomputed), is enough."""
    groups: dict[tuple[int, int], list[Patch]] = defaultdict(list)
    for patch in sweep.patches:
        start = 0 if patch.pos is None else min(patch.pos, first_answer)
        groups[(patch.layer, start)].append(patch)
    return [(layer, start, patches[i:i + copies]) for (layer, start), patches in groups.items()
            for i in range(0, len(patches), copies)]
