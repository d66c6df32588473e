"""Canonical hook points: TransformerLens-compatible names for places in the forward pass.

A hook point is a named tensor in the forward pass that can be read or replaced::

    >>> hook_name("resid_pre", 3)
    'blocks.3.hook_resid_pre'
    >>> hook_name("pattern", 3)
    'blocks.3.attn.hook_pattern'
    >>> hook_name("scale", 3, "ln1")
    'blocks.3.ln1.hook_scale'

Which points a model has depends on its architecture (``hook_pos_embed`` only where
positions are learned, ``hook_resid_mid`` only where attention and MLP run in
sequence, ``ln1_post``/``ln2_post`` only with Gemma's extra norms); the adapter says
which, and :func:`build_points` lists them in forward order.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mechscope.errors import HookPointError, closest

# Dimension names of each kind of point, in the order the tensor holds them.
_BPD = ("batch", "pos", "d_model")
_SCALE = ("batch", "pos", "1")
KIND_DIMS: dict[str, tuple[str, ...]] = {
    "hook_embed": _BPD,
    "hook_pos_embed": _BPD,
    "hook_resid_pre": _BPD,
    "ln1.hook_scale": _SCALE,
    "ln1.hook_normalized": _BPD,
    "attn.hook_q": ("batch", "pos", "head", "d_head"),
    "attn.hook_k": ("batch", "pos", "kv_head", "d_head"),
    "attn.hook_v": ("batch", "pos", "kv_head", "d_head"),
    "attn.hook_attn_scores": ("batch", "head", "query_pos", "key_pos"),
    "attn.hook_pattern": ("batch", "head", "query_pos", "key_pos"),
    "attn.hook_z": ("batch", "pos", "head", "d_head"),
    "attn.hook_result": ("batch", "pos", "head", "d_model"),
    "ln1_post.hook_scale": _SCALE,
    "hook_attn_out": _BPD,
    "hook_resid_mid": _BPD,
    "ln2.hook_scale": _SCALE,
    "ln2.hook_normalized": _BPD,
    "mlp.hook_pre": ("batch", "pos", "d_mlp"),
    "mlp.hook_pre_linear": ("batch", "pos", "d_mlp"),
    "mlp.hook_post": ("batch", "pos", "d_mlp"),
    "ln2_post.hook_scale": _SCALE,
    "hook_mlp_out": _BPD,
    "hook_resid_post": _BPD,
    "ln_final.hook_scale": _SCALE,
    "ln_final.hook_normalized": _BPD,
    "hook_logits": ("batch", "pos", "d_vocab"),
}
# Kinds that live outside the blocks; every other kind is per layer.
GLOBAL_KINDS = ("hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized", "hook_logits")
# Computed only when asked for by name or glob, never by "cache everything".
ON_REQUEST_KINDS = frozenset({"attn.hook_result"})
# Short forms accepted by hook_name(), as in TransformerLens' get_act_name.
_SHORT = {
    "embed": "hook_embed", "pos_embed": "hook_pos_embed", "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid", "resid_post": "hook_resid_post", "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out", "q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v",
    "z": "attn.hook_z", "result": "attn.hook_result", "attn_scores": "attn.hook_attn_scores",
    "pattern": "attn.hook_pattern", "pre": "mlp.hook_pre", "pre_linear": "mlp.hook_pre_linear",
    "post": "mlp.hook_post", "logits": "hook_logits",
}


@dataclass(frozen=True)
class HookPoint:
    """One named place in the forward pass."""

    name: str
    """Full canonical name, e.g. ``blocks.3.attn.hook_z``."""
    layer: int | None
    """Block index, or None for points outside the blocks (embeddings, final norm, logits)."""
    kind: str
    """The name with ``blocks.{layer}.`` removed, e.g. ``attn.hook_z``."""
    dims: tuple[str, ...]
    """Dimension names of the tensor a hook receives, e.g. ``("batch", "pos", "head", "d_head")``."""

    @property
    def pos_dim(self) -> int:
        """Index of the (query) position dimension: the one ``positions=`` selects."""
        return self.dims.index("query_pos") if "query_pos" in self.dims else self.dims.index("pos")

    @property
    def head_dim(self) -> int | None:
        """Index of the head (or kv_head) dimension, or None for points without one."""
        return next((i for i, d in enumerate(self.dims) if d in ("head", "kv_head")), None)


def hook_name(kind: str, layer: int | None = None, norm: str | None = None) -> str:
    """Build a canonical name from a short kind and a layer (TransformerLens' ``get_act_name``).

    ``kind`` is a short form (``"resid_pre"``, ``"pattern"``, ``"z"``, ``"scale"``,
    ``"normalized"`` …) or a
    full kind (``"attn.hook_z"``); ``norm`` picks the norm of a ``"scale"`` point
    (``"ln1"``, ``"ln2"``, ``"ln1_post"``, ``"ln2_post"``, or None for the final norm);
    ``"normalized"`` names a norm's output the same way.
    """
    if kind in ("scale", "normalized"):
        if layer is not None and norm is None:
            raise HookPointError(
                f"a block has several norms; name one: hook_name({kind!r}, {layer}, 'ln1') or 'ln2' "
                f"(Gemma also 'ln1_post', 'ln2_post' for scales); for the final norm use hook_name({kind!r})"
            )
        full = f"{norm or 'ln_final'}.hook_{kind}"
    else:
        full = _SHORT.get(kind, kind)
    if full not in KIND_DIMS:
        raise HookPointError(
            f"unknown hook kind {kind!r}; expected one of {sorted(_SHORT) + ['normalized', 'scale']} "
            f"or a full kind such as 'attn.hook_z'"
        )
    if full in GLOBAL_KINDS:
        if layer is not None:
            raise HookPointError(f"{full} is not per layer; call hook_name({kind!r}) without a layer")
        return full
    if layer is None:
        raise HookPointError(f"hook kind {kind!r} is per layer; pass a layer, e.g. hook_name({kind!r}, 0)")
    return f"blocks.{layer}.{full}"


def build_points(n_layers: int, kinds: Iterable[str]) -> dict[str, HookPoint]:
    """Every hook point of a model with ``n_layers`` blocks and the given kinds, in forward order."""
    wanted = set(kinds)
    unknown = wanted - KIND_DIMS.keys()
    if unknown:
        raise ValueError(f"unknown hook kinds {sorted(unknown)}")
    points: dict[str, HookPoint] = {}

    def add(kind: str, layer: int | None) -> None:
        name = kind if layer is None else f"blocks.{layer}.{kind}"
        points[name] = HookPoint(name=name, layer=layer, kind=kind, dims=KIND_DIMS[kind])

    for kind in ("hook_embed", "hook_pos_embed"):
        if kind in wanted:
            add(kind, None)
    for layer in range(n_layers):
        for kind in KIND_DIMS:
            if kind in wanted and kind not in GLOBAL_KINDS:
                add(kind, layer)
    for kind in ("ln_final.hook_scale", "ln_final.hook_normalized", "hook_logits"):
        if kind in wanted:
            add(kind, None)
    return points


_GLOB = re.compile(r"[*?\[]")


def resolve(
    patterns: str | Sequence[str],
    points: dict[str, HookPoint],
    *,
    missing_reason: dict[str, str] | None = None,
) -> list[HookPoint]:
    """The hook points that names or globs select, in forward order, without duplicates.

    An exact name must exist; a glob must match at least one point. A glob selects
    ``attn.hook_result`` (computed only on request) only if it contains ``result`` or
    matches nothing else. Errors name the closest
    valid points, or say why a point does not exist in this architecture when
    ``missing_reason`` knows (e.g. ``hook_resid_mid`` under parallel attention).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    chosen: set[str] = set()
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise HookPointError(f"hook point names must be strings; received {pattern!r}")
        if _GLOB.search(pattern):
            # Points computed only on request join a glob that names them or matches nothing else.
            everything = fnmatch.filter(points, pattern)
            matched = [
                name for name in everything
                if points[name].kind not in ON_REQUEST_KINDS or _short_kind(points[name]) in pattern
            ] or everything
            if not matched:
                raise HookPointError(
                    f"no hook point matches {pattern!r}; examples of valid names: "
                    f"{', '.join(list(points)[:3])}; see model.hook_names()"
                )
            chosen.update(matched)
        elif pattern in points:
            chosen.add(pattern)
        else:
            kind = re.sub(r"^blocks\.\d+\.", "", pattern)
            if missing_reason and kind in missing_reason:
                raise HookPointError(f"hook point {pattern!r} does not exist here: {missing_reason[kind]}")
            hints = closest(pattern, points)
            hint = f"; closest valid names: {', '.join(hints)}" if hints else "; see model.hook_names()"
            raise HookPointError(f"unknown hook point {pattern!r}{hint}")
    return [point for name, point in points.items() if name in chosen]


def _short_kind(point: HookPoint) -> str:
    return point.kind.rsplit(".", 1)[-1].removeprefix("hook_")
