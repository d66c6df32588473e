"""What every technique returns: a frozen dataclass that can be saved and looked at.

A technique's result subclasses :class:`Result`::

    @dataclass(frozen=True)
    class LogitLensResult(Result):
        probs: Float[Tensor, "layer pos"]
        \"\"\"Probability of the answer at each layer and position.\"\"\"
        tokens: tuple[str, ...]

        def plot(self) -> Figure:
            return heatmap(self.probs, ...)

and gets ``to_dict()`` (tensors become nested lists) and ``save(path)`` (JSON, written to
a temporary file and renamed, so a failure never leaves a half-written result).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch


T = TypeVar("T")

Checkpoint = Callable[[str, Callable[[], T]], T]
"""How a long computation keeps its finished parts: it calls ``checkpoint(name,
compute)`` for each part (a layer of a patching sweep, a batch of prompts of edge
scoring) and uses what comes back, which is ``compute()`` or the value an interrupted
earlier run of the same computation kept under ``name``. The results store's
:meth:`~mechscope.store.recorder.Recorder.stage` is one; :func:`no_checkpoint` keeps
nothing."""


def no_checkpoint(name: str, compute: Callable[[], T]) -> T:
    """The :data:`Checkpoint` that keeps nothing: every part is computed."""
    return compute()


class Result:
    """Base of technique results (subclasses are frozen dataclasses)."""

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-able values; tensors become nested lists."""
        if not dataclasses.is_dataclass(self):  # pragma: no cover - programming error
            raise TypeError(f"{type(self).__name__} must be a dataclass")
        out = {"type": type(self).__name__}
        for field in dataclasses.fields(self):
            if field.name.startswith("_"):
                continue
            out[field.name] = to_jsonable(getattr(self, field.name))
        return out

    def save(self, path: str | Path) -> Path:
        """Write ``to_dict()`` as JSON to ``path``, atomically."""
        return write_json(path, self.to_dict())


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return to_jsonable(value.item() if value.dim() == 0 else value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):  # a list in an order that does not depend on hashing
        return sorted((to_jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if dataclasses.is_dataclass(value):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON through a temporary file and a rename: never a half-written file."""
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a
    rename: a reader sees the old file or the new one, never part of one, and a failure
    (a full disk, Ctrl-C) leaves the old file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """:func:`write_bytes_atomic` for text."""
    return write_bytes_atomic(path, text.encode(encoding))


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""The process's umask, read once at import (mkstemp creates files 0600; written files get
the mode an ordinary ``open`` would give them)."""
