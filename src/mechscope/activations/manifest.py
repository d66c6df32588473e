"""What an activation store records about itself: its format, the model it was harvested
from, and the settings that decide which numbers it holds.

Shared by :mod:`~mechscope.activations.harvest` (which writes ``manifest.json``) and
:mod:`~mechscope.activations.store` (which reads it); neither imports the other's insides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mechscope.errors import InputError, check_int

FORMAT = "mechscope.activation_store"
VERSION = 1
MANIFEST = "manifest.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""Storage dtypes by name."""
_PROBE_TEXT = "The quick brown fox jumps over the lazy dog. 0123456789 def f(x): return {x}"


class StoreMismatchError(InputError):
    """A store directory holds a harvest of another model, corpus or settings."""


@dataclass(frozen=True, kw_only=True)
class ModelIdentity:
    """Which model made a harvest: an exact hash of its structure and tokenizer, plus a
    sample of its weights compared with a tolerance (so that the same weights in fp32,
    bf16 or fp16, on any device, count as one model)."""

    name: str
    """How the model was named when loaded (informative only: paths differ between machines)."""
    structure: str
    """Hash of the family, sizes, parameter names and shapes, and the tokenizer."""
    weights_sample: tuple[float, ...]
    """A few evenly spaced values of every parameter, in sorted order of names."""
    dtype: str
    """The model's parameter dtype at harvest (informative only)."""
    model_type: str | None = None
    """Hugging Face's ``config.model_type`` (``llama``, ``gemma3_text`` …), for formats that
    name it (llama.cpp control vectors); None in manifests written before it was recorded."""

    @classmethod
    def of(cls, model) -> ModelIdentity:
        digest = hashlib.blake2b(digest_size=16)
        cfg = model.cfg
        digest.update(repr((cfg.family, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.d_vocab)).encode())
        sample: list[Tensor] = []
        for name, param in sorted(model.hf_model.named_parameters()):
            digest.update(f"{name}{tuple(param.shape)}".encode())
            flat = param.detach().reshape(-1)
            sample.append(flat[:: max(1, flat.numel() // 4)][:4].float().cpu())
        tokenizer = model.tokenizer
        digest.update(repr((len(tokenizer), tokenizer(_PROBE_TEXT)["input_ids"])).encode())
        values = tuple(float(v) for v in torch.cat(sample).tolist())
        return cls(name=model.name, structure=digest.hexdigest(), weights_sample=values, dtype=str(model.dtype),
                   model_type=cfg.model_type)

    def matches(self, other: ModelIdentity) -> bool:
        if self.structure != other.structure or len(self.weights_sample) != len(other.weights_sample):
            return False
        return torch.allclose(torch.tensor(self.weights_sample), torch.tensor(other.weights_sample),
                              rtol=1e-2, atol=1e-5)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weights_sample": list(self.weights_sample)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIdentity:
        return cls(name=data["name"], structure=data["structure"], weights_sample=tuple(data["weights_sample"]),
                   dtype=data["dtype"], model_type=data.get("model_type"))


def model_mismatch(out_dir: Path, stored: ModelIdentity, current: ModelIdentity) -> str:
    what = "other weights of the same architecture" if stored.structure == current.structure else "another model"
    return (
        f"{out_dir} holds activations of {what} ({stored.name}, structure {stored.structure[:12]}) than "
        f"{current.name} (structure {current.structure[:12]}); use the model it was harvested from, "
        f"or harvest into another directory"
    )


@dataclass(frozen=True, kw_only=True)
class HarvestSettings:
    """Everything that decides which numbers a harvest stores (see :func:`harvest`)."""

    hook_names: tuple[str, ...]
    """The hook points read: one (an autoencoder's input) or two (a transcoder's input, target)."""
    n_tokens: int
    """How many tokens to store (after dropping BOS and padding)."""
    seq_len: int = 128
    """Tokens per row, BOS included."""
    batch_size: int = 8
    """Rows per forward pass; part of the settings because resuming re-runs the same batches."""
    dtype: str = "float32"
    """Storage dtype: ``float32`` or ``bfloat16`` (half the disk, ~3 significant digits)."""
    shard_tokens: int = 2**15
    """Tokens per shard file (the last one holds fewer)."""
    exclude_bos: bool = True
    """Drop BOS tokens, whose activations (the attention sink) are outliers."""
    exclude_padding: bool = True
    """Drop padding (only ``pack=False`` rows have any)."""
    prepend_bos: bool | None = True
    """Start each row with BOS, so that the sink falls on a token that is dropped; None
    follows the tokenizer's habit (SmolLM2's adds none: its sink is then a text token)."""
    pack: bool = True
    """Pack documents into rows (no padding); False gives each document its own rows."""
    split: str = "train"
    """Which rows of the corpus: ``train`` or ``heldout`` (about 1 in 10, by a hash)."""
    seed: int = 0
    """Order of the rows."""

    def __post_init__(self) -> None:
        if isinstance(self.hook_names, str):
            object.__setattr__(self, "hook_names", (self.hook_names,))
        object.__setattr__(self, "hook_names", tuple(self.hook_names))
        for name, least in (("n_tokens", 1), ("seq_len", 2), ("batch_size", 1), ("shard_tokens", 1), ("seed", 0)):
            check_int(f"HarvestSettings.{name}", getattr(self, name), minimum=least)
        if self.dtype not in DTYPES:
            raise InputError(f"HarvestSettings.dtype must be one of {', '.join(DTYPES)}; received {self.dtype!r}")
        if self.split not in ("train", "heldout"):
            raise InputError(f"HarvestSettings.split must be 'train' or 'heldout'; received {self.split!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hook_names": list(self.hook_names)}


def read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} holds no {MANIFEST}; is it an activation store (made by harvest)?") from None
    except (OSError, ValueError) as error:
        raise InputError(f"{file} is not readable JSON ({error}); the store is damaged") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise InputError(
            f"{file} is not a version-{VERSION} {FORMAT} manifest (format {manifest.get('format')!r}, "
            f"version {manifest.get('version')!r})"
        )
    return manifest
