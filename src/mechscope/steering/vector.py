"""A steering vector: one direction per hook point, and everything needed to trust it later.

::

    vector = make_vector(model, pairs, layers=[10, 12])          # see mechscope.steering.sources
    vector.hook_names, vector.layers, vector.method, vector.position, vector.source
    vector.save("weddings.safetensors")
    vector = SteeringVector.load("weddings.safetensors")
    vector.check_fits(other_model)        # VectorMismatchError: made on another model

A vector records the hook points it was made at, the rule its activations were read with
(``last``, ``mean``, ``word:…``), the method, the data it came from, and the model's
:class:`~mechscope.activations.manifest.ModelIdentity` (a hash of structure and tokenizer
plus a sample of the weights). Applying it to another model, or at a hook point it has no
direction for, is refused with a message that says what it was made for. The file is
safetensors: one tensor per hook point, the record in its metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from mechscope.activations.collect import hook_width
from mechscope.activations.manifest import ModelIdentity
from mechscope.errors import InputError
from mechscope.results import write_bytes_atomic

FORMAT = "mechscope.steering_vector"
VERSION = "1"
_LAYER = re.compile(r"^blocks\.(\d+)\.")


class VectorMismatchError(InputError):
    """A steering vector applied to a model or hook point it was not made for."""


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """Directions to add at hook points, with the record of how they were made."""

    directions: dict[str, Float[Tensor, "width"]]
    """One direction per hook point (float32, CPU), by hook name."""
    model: ModelIdentity
    """The model the directions were read from."""
    method: str
    """How they were made: a key of :data:`~mechscope.steering.sources.VECTOR_SOURCES`,
    ``sae`` (a latent's decoder row), ``random`` (a control) or ``gguf`` (imported)."""
    position: str
    """The position rule the activations were read at (``last``, ``mean``, ``word:…``); empty
    when no activations were read (a given SAE latent, an imported file)."""
    source: str
    """The data: e.g. ``weddings: 32 pairs, digest 3f2a…``, or an SAE and its latent."""

    def __post_init__(self) -> None:
        if not self.directions:
            raise InputError("a steering vector needs at least one direction")
        for name, direction in self.directions.items():
            if direction.dim() != 1 or not torch.isfinite(direction).all():
                raise InputError(f"the direction at {name} must be one finite vector; received shape "
                                 f"{tuple(direction.shape)}")

    @property
    def hook_names(self) -> tuple[str, ...]:
        """The hook points, in layer order."""
        return tuple(sorted(self.directions, key=lambda name: (layer_of(name), name)))

    @property
    def layers(self) -> tuple[int, ...]:
        """The layers of the hook points (-1 for points outside the blocks)."""
        return tuple(layer_of(name) for name in self.hook_names)

    def at(self, layers: int | Sequence[int]) -> SteeringVector:
        """The directions at these layers only; refuses a layer it has none for."""
        wanted = [layers] if isinstance(layers, int) else list(layers)
        missing = [layer for layer in wanted if layer not in self.layers]
        if missing or not wanted:
            raise VectorMismatchError(
                f"this vector has directions at layers {list(self.layers)} ({', '.join(self.hook_names)}); received "
                f"layers {wanted}. Make a vector at those layers (make_vector(..., layers={wanted}))")
        keep = {name: d for name, d in self.directions.items() if layer_of(name) in wanted}
        return SteeringVector(directions=keep, model=self.model, method=self.method, position=self.position,
                              source=self.source)

    def check_fits(self, model) -> None:
        """Refuse ``model`` unless it is the model the vector was made on and has every hook
        point at the vector's width."""
        identity = ModelIdentity.of(model)
        if not self.model.matches(identity):
            what = "other weights of the same architecture" if identity.structure == self.model.structure else \
                "another model"
            raise VectorMismatchError(
                f"this steering vector was made on {self.model.name} (structure {self.model.structure[:12]}); "
                f"{model.name} is {what} (structure {identity.structure[:12]}). Make the vector on this model "
                f"(make_vector), or load the model it was made on")
        for name, direction in self.directions.items():
            width = hook_width(model, name)  # an unknown point raises HookPointError naming the closest
            if width != direction.shape[0]:
                raise VectorMismatchError(f"the direction at {name} has {direction.shape[0]} numbers but "
                                          f"{model.name}'s {name} is {width} wide")

    def norms(self) -> dict[str, float]:
        """Each direction's norm, by hook name."""
        return {name: float(self.directions[name].norm()) for name in self.hook_names}

    def to_dict(self) -> dict[str, Any]:
        """The record (not the directions themselves): hook points, norms, method, data, model."""
        return {"type": "SteeringVector", "hook_names": list(self.hook_names), "norms": self.norms(),
                "method": self.method, "position": self.position, "source": self.source,
                "model": self.model.to_dict()}

    def save(self, path: str | Path) -> Path:
        """Write a safetensors file (directions as tensors, the record as metadata), atomically."""
        metadata = {"format": FORMAT, "version": VERSION, "method": self.method, "position": self.position,
                    "source": self.source, "model": json.dumps(self.model.to_dict())}
        return write_bytes_atomic(path, safetensors_bytes({name: d.contiguous() for name, d in self.directions.items()},
                                                          metadata=metadata))

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        """Read a vector written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such steering vector file: {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
            directions = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise InputError(f"{path} is not a readable safetensors file ({error})") from None
        if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
            raise InputError(f"{path} is not a version-{VERSION} mechscope steering vector (metadata format "
                             f"{metadata.get('format')!r}); a llama.cpp/repeng .gguf vector loads with import_gguf")
        return cls(directions={name: d.float() for name, d in directions.items()},
                   model=ModelIdentity.from_dict(json.loads(metadata["model"])), method=metadata["method"],
                   position=metadata["position"], source=metadata["source"])


def layer_of(hook_name: str) -> int:
    """The block index in a hook name (``blocks.12.hook_resid_post`` → 12), else -1."""
    match = _LAYER.match(hook_name)
    return int(match.group(1)) if match else -1


def random_like(vector: SteeringVector, *, seed: int = 0) -> SteeringVector:
    """A control: at each hook point, a Gaussian random direction of the same norm."""
    generator = torch.Generator().manual_seed(seed)
    directions = {}
    for name in vector.hook_names:
        d = vector.directions[name]
        r = torch.randn(d.shape[0], generator=generator)
        directions[name] = r * (d.norm() / r.norm())
    return SteeringVector(directions=directions, model=vector.model, method="random", position=vector.position,
                          source=f"random directions of the norms of a {vector.method} vector (seed {seed})")
