"""Saving a figure atomically: rendered in memory, then written through a rename.

    save_figure(result.plot(), "out/patch.png")

matplotlib's ``savefig`` writes straight into the target, so an interrupted save leaves a
truncated PNG where the last good one was; this never does.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from mechscope.results import write_bytes_atomic

DPI = 110
"""Resolution of saved figures, in dots per inch."""


def save_figure(figure: Figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Write ``figure`` to ``path`` in the format its suffix names (``.png``, ``.svg``, ``.pdf``)."""
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    return write_bytes_atomic(path, buffer.getvalue())
