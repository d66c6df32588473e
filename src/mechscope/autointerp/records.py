"""A unit's examples, as explainers and scorers read them, and how they are kept on disk.

One safetensors file per unit, ``records/{module}_latent{unit}.safetensors``, holds the
examples' token ids and activations (``(examples, ctx_len)``, padded), their kinds and
quantiles; its metadata holds the decoded tokens and the unit's statistics, so that
explaining and scoring need neither the store nor the model. ``records/manifest.json``
says which store and settings made them (see :mod:`~mechscope.autointerp.examples`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Int
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor

from mechscope.errors import InputError
from mechscope.results import write_bytes_atomic

KINDS = ("train_top", "train_quantile", "train_hard_negative", "test_activating", "test_random", "test_hard_negative")
"""Example kinds. ``train_*`` are shown to explainers; ``test_*`` are held out for scoring."""
ACTIVATING = ("train_top", "train_quantile", "test_activating")
"""The kinds on which the unit fires."""


@dataclass(frozen=True)
class Example:
    """One context and the unit's activation on each of its tokens."""

    str_tokens: tuple[str, ...]
    """The context's tokens, decoded one by one."""
    activations: tuple[float, ...]
    """The unit's activation on each token."""
    kind: str
    """One of :data:`KINDS`."""
    quantile: int
    """For activating examples, the activation quantile it was drawn from (0 = the top
    examples, 1 = the highest quantile ...); -1 for non-activating ones (delphi's ``distance``)."""

    @property
    def activating(self) -> bool:
        return self.kind in ACTIVATING

    @property
    def text(self) -> str:
        return "".join(self.str_tokens)


@dataclass(frozen=True)
class UnitRecords:
    """Everything explainers and scorers know about one unit."""

    name: str
    """delphi's name, ``{module}_latent{unit}``."""
    module: str
    """The hook point (or dictionary output) the unit lives at."""
    unit: int
    """The unit's index."""
    examples: tuple[Example, ...]
    """Train and test examples (see :data:`KINDS`)."""
    threshold: float
    """Activation above which the unit counts as firing on a token."""
    max_activation: float
    """The largest activation seen in the scan."""
    firing_rate: float
    """Fraction of scanned tokens on which it fires."""
    top_tokens: tuple[tuple[str, int], ...]
    """The tokens it fires on most often, with counts."""
    promoted: tuple[tuple[str, float], ...]
    """Tokens whose logits it raises most (direct effect), with the logit change per unit activation."""
    suppressed: tuple[tuple[str, float], ...]
    """Tokens whose logits it lowers most."""

    def of_kind(self, *kinds: str) -> list[Example]:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise InputError(f"example kinds are {', '.join(KINDS)}; received {unknown}")
        return [example for example in self.examples if example.kind in kinds]


def save_records(records: UnitRecords, token_ids: Int[Tensor, "n ctx"], path: Path) -> Path:
    """Write one unit's records atomically."""
    ctx = max((len(e.str_tokens) for e in records.examples), default=1)
    acts = torch.zeros(len(records.examples), ctx)
    for i, example in enumerate(records.examples):
        acts[i, : len(example.activations)] = torch.tensor(example.activations)
    tensors = {
        "token_ids": token_ids.to(torch.int32).contiguous(),
        "activations": acts,
        "lengths": torch.tensor([len(e.str_tokens) for e in records.examples], dtype=torch.int32),
        "kinds": torch.tensor([KINDS.index(e.kind) for e in records.examples], dtype=torch.int8),
        "quantiles": torch.tensor([e.quantile for e in records.examples], dtype=torch.int16),
    }
    meta = {"name": records.name, "module": records.module, "unit": records.unit, "threshold": records.threshold,
            "max_activation": records.max_activation, "firing_rate": records.firing_rate,
            "top_tokens": records.top_tokens, "promoted": records.promoted, "suppressed": records.suppressed,
            "str_tokens": [e.str_tokens for e in records.examples]}
    return write_bytes_atomic(path, save(tensors, metadata={"mechscope": json.dumps(meta)}))


def load_records(path: str | Path) -> UnitRecords:
    """Read one unit's records."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as reader:
            meta = json.loads(reader.metadata()["mechscope"])
            acts, lengths = reader.get_tensor("activations"), reader.get_tensor("lengths")
            kinds, quantiles = reader.get_tensor("kinds"), reader.get_tensor("quantiles")
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path} is not a unit's records file ({error}); rebuild the records") from None
    examples = tuple(
        Example(str_tokens=tuple(tokens), activations=tuple(acts[i, : int(lengths[i])].tolist()),
                kind=KINDS[int(kinds[i])], quantile=int(quantiles[i]))
        for i, tokens in enumerate(meta["str_tokens"])
    )
    pairs = {key: tuple((str(a), b) for a, b in meta[key]) for key in ("top_tokens", "promoted", "suppressed")}
    return UnitRecords(name=meta["name"], module=meta["module"], unit=int(meta["unit"]), examples=examples,
                       threshold=float(meta["threshold"]), max_activation=float(meta["max_activation"]),
                       firing_rate=float(meta["firing_rate"]), **pairs)


def records_path(directory: Path, name: str) -> Path:
    return Path(directory) / "records" / f"{name}.safetensors"


def load_all(directory: str | Path, names: Sequence[str] | None = None) -> list[UnitRecords]:
    """The records under ``directory/records`` (those named, in that order, or all, by unit)."""
    folder = Path(directory) / "records"
    if names is None:
        paths = sorted(folder.glob("*.safetensors"), key=lambda p: (p.stem.rsplit("_latent", 1)[0],
                                                                    int(p.stem.rsplit("_latent", 1)[1])))
    else:
        paths = [records_path(Path(directory), name) for name in names]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise InputError(f"no records for {missing[0].stem} under {folder}; build them first (mechscope explain does)")
    return [load_records(p) for p in paths]
