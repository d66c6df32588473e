"""An edit: low-rank changes of MLP output projections, applied only inside a context.

::

    edit = rome(model, [request])                 # or memit(...), ft_l(...)
    with edited(model, edit):
        model("The Eiffel Tower is located in the city of")    # now says " Rome"
    # here every weight is bit for bit what it was before
    save_edit(edit, "eiffel.safetensors");  edit = load_edit("eiffel.safetensors")

Each :class:`LayerUpdate` adds ``left @ right`` to the layer's MLP output projection,
written in TransformerLens' ``W_out`` layout (d_mlp × d_model, so ``mlp_post @ W_out``
is the MLP's output before any bias). The module is the one the model's adapter names
(``mlp_out_proj_path``), whatever the family. ROME's update has rank one, MEMIT's rank
the number of requests per layer, FT-L's is a dense change written as ``delta @ I``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save
from torch import Tensor

from mechscope.errors import InputError
from mechscope.facts.counterfact import EditRequest, request_dict, requests_from_records
from mechscope.results import Result, write_bytes_atomic

EDIT_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class LayerUpdate:
    """``W_out[layer] += left @ right``."""

    layer: int
    """The layer whose MLP output projection changes."""
    left: Float[Tensor, "d_mlp rank"]
    """Key-side factor."""
    right: Float[Tensor, "rank d_model"]
    """Value-side factor."""

    def __post_init__(self) -> None:
        if self.left.dim() != 2 or self.right.dim() != 2 or self.left.shape[1] != self.right.shape[0]:
            raise InputError(
                f"a layer update needs left (d_mlp, rank) and right (rank, d_model); received "
                f"{tuple(self.left.shape)} and {tuple(self.right.shape)}"
            )

    @property
    def delta(self) -> Float[Tensor, "d_mlp d_model"]:
        return self.left @ self.right


@dataclass(frozen=True, kw_only=True)
class Edit(Result):
    """A model edit: what changes, which requests it serves, how it was made."""

    method: str
    """``rome``, ``memit`` or ``ft-l``."""
    updates: tuple[LayerUpdate, ...]
    """The weight changes, applied in order."""
    requests: tuple[EditRequest, ...]
    """The requests the edit was computed for."""
    model: str
    """Name of the model it was computed on."""
    model_hash: str
    """:func:`~mechscope.models.identity.weights_hash` of that model, unedited."""
    info: dict = field(default_factory=dict)
    """How it was made: layers, losses, seconds, hyperparameters."""

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted({update.layer for update in self.updates}))

    def to_dict(self) -> dict:
        return {"type": "Edit", "method": self.method, "layers": list(self.layers), "model": self.model,
                "model_hash": self.model_hash, "requests": [request_dict(r) for r in self.requests],
                "ranks": [u.left.shape[1] for u in self.updates], "info": self.info}


def _out_weight(model, layer: int) -> torch.nn.Parameter:
    adapter = model.adapter
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < model.cfg.n_layers:
        raise InputError(f"layer must be in 0..{model.cfg.n_layers - 1} for {model.name}; received {layer!r}")
    return adapter.in_block(layer, adapter.mlp_out_proj_path).weight


def check_fits(model, edit: Edit) -> None:
    """Refuse an edit whose layers or shapes do not fit ``model``."""
    d_mlp, d_model = model.cfg.d_mlp, model.cfg.d_model
    for update in edit.updates:
        _out_weight(model, update.layer)
        if update.left.shape[0] != d_mlp or update.right.shape[1] != d_model:
            raise InputError(
                f"the edit was made for d_mlp={update.left.shape[0]}, d_model={update.right.shape[1]}; "
                f"{model.name} has d_mlp={d_mlp}, d_model={d_model}"
            )


@contextmanager
def edited(model, edit: Edit | Sequence[LayerUpdate]) -> Iterator:
    """Inside the block the model carries the edit; on exit (also after an error) every
    changed weight is restored bit for bit from a saved copy."""
    updates = tuple(edit.updates if isinstance(edit, Edit) else edit)
    if isinstance(edit, Edit):
        check_fits(model, edit)
    saved: dict[int, tuple[torch.nn.Parameter, Tensor]] = {}
    try:
        with torch.no_grad():
            for update in updates:
                weight = _out_weight(model, update.layer)
                saved.setdefault(update.layer, (weight, weight.detach().clone()))
                w_out = model.adapter.W_out(update.layer)
                w_out.add_(update.delta.to(device=w_out.device, dtype=w_out.dtype))
        yield model
    finally:
        with torch.no_grad():
            for weight, original in saved.values():
                weight.copy_(original)


def in_turn(model, requests: Sequence[EditRequest],
            compute: Callable[[EditRequest], tuple[LayerUpdate, object]]) -> tuple[list[LayerUpdate], list]:
    """Each request's update computed on the model carrying the earlier ones (ROME, FT-L);
    returns the updates and whatever ``compute`` reported with each."""
    updates: list[LayerUpdate] = []
    reports = []
    for request in requests:
        with edited(model, updates):
            update, report = compute(request)
        updates.append(update)
        reports.append(report)
    return updates, reports


def check_requests(requests: Sequence[EditRequest] | EditRequest) -> tuple[EditRequest, ...]:
    """Requests as a non-empty tuple, or a clear error."""
    requests = (requests,) if isinstance(requests, EditRequest) else tuple(requests)
    if not requests:
        raise InputError("no edit requests given; pass at least one (make_request or make_requests)")
    for request in requests:
        if not isinstance(request, EditRequest):
            raise InputError(f"expected EditRequest objects; received {type(request).__name__}")
    return requests


def save_edit(edit: Edit, path: str | Path) -> Path:
    """Write the factors as safetensors, with the rest of the edit as JSON metadata (atomically)."""
    tensors = {}
    for i, update in enumerate(edit.updates):
        tensors[f"{i}.left"] = update.left.detach().cpu().clone()
        tensors[f"{i}.right"] = update.right.detach().cpu().clone()
    meta = {"format": EDIT_FORMAT, "method": edit.method, "model": edit.model, "model_hash": edit.model_hash,
            "layers": [u.layer for u in edit.updates], "info": edit.info,
            "requests": [request_dict(r) for r in edit.requests]}
    return write_bytes_atomic(path, save(tensors, metadata={"mechscope_edit": json.dumps(meta)}))


def load_edit(path: str | Path) -> Edit:
    """An edit written by :func:`save_edit`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such edit file: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("mechscope_edit", "null"))
        tensors = load_file(path)
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise InputError(f"{path} is not a mechscope edit file ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != EDIT_FORMAT:
        raise InputError(f"{path} is not a mechscope edit file of format {EDIT_FORMAT} (written by save_edit)")
    updates = tuple(LayerUpdate(layer=layer, left=tensors[f"{i}.left"], right=tensors[f"{i}.right"])
                    for i, layer in enumerate(meta["layers"]))
    requests = requests_from_records(meta["requests"], source=str(path))
    return Edit(method=meta["method"], updates=updates, requests=requests, model=meta["model"],
                model_hash=meta["model_hash"], info=meta["info"])
