"""Editing methods by name, one signature for all.

::

    edit = edit_model(model, [request], method="rome")            # or "memit", "ft-l"
    edit = edit_model(model, requests, method="memit", layer=6)   # MEMIT's span ends at layer 6

Every method is ``run(model, requests, *, config, progress) -> Edit``. ``layer=None``
takes the layer from causal tracing (:func:`~mechscope.editing.layer.choose_edit_layer`);
for MEMIT it is the last of its layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mechscope.editing.edit import Edit
from mechscope.editing.ft import FtConfig, ft_l
from mechscope.editing.memit import MemitConfig, memit
from mechscope.editing.rome import RomeConfig, rome
from mechscope.errors import InputError, closest
from mechscope.facts.counterfact import EditRequest


def _memit_config(layer: int | None) -> MemitConfig:
    span = MemitConfig().span
    return MemitConfig() if layer is None else MemitConfig(layers=tuple(range(max(0, layer - span + 1), layer + 1)))


@dataclass(frozen=True)
class EditMethod:
    """An editing method and how it is used."""

    run: Callable[..., Edit]
    """``run(model, requests, *, config, progress) -> Edit``."""
    config: Callable[[int | None], object]
    """The method's default config, with the edited (last) layer set when given."""
    batched: bool
    """One edit for all requests (MEMIT's mass editing) rather than one edit per request."""


EDIT_METHODS: dict[str, EditMethod] = {
    "rome": EditMethod(rome, lambda layer: RomeConfig(layer=layer), batched=False),
    "memit": EditMethod(memit, _memit_config, batched=True),
    "ft-l": EditMethod(ft_l, lambda layer: FtConfig(layer=layer), batched=False),
}
"""The editing methods by name."""


def get_method(name: str) -> EditMethod:
    if name not in EDIT_METHODS:
        hint = closest(name, EDIT_METHODS)
        raise InputError(f"unknown editing method {name!r}; known: {', '.join(EDIT_METHODS)}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return EDIT_METHODS[name]


def edit_model(model, requests: Sequence[EditRequest] | EditRequest, *, method: str = "rome",
               layer: int | None = None, config=None, progress: bool = False) -> Edit:
    """Compute an edit with ``method``; ``config`` (the method's own) overrides ``layer``."""
    chosen = get_method(method)
    return chosen.run(model, requests, config=config if config is not None else chosen.config(layer),
                      progress=progress)
