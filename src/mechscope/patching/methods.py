"""Every way to compute a patching sweep, by name: the names ``mechscope patch --method`` takes.

::

    from mechscope.patching.methods import PATCHING_METHODS
    result = PATCHING_METHODS["atp*"](model, task, what="heads", direction="denoise")

Each function takes ``(model, task, *, what, direction, layers, positions, max_tokens,
checkpoint, progress)`` and returns a :class:`~mechscope.patching.result.PatchingResult`
whose ``method`` is its name.
"""

from __future__ import annotations

from collections.abc import Callable

from mechscope.patching.activation import activation_patching
from mechscope.patching.attribution import attribution_patching, attribution_patching_star
from mechscope.patching.result import PatchingResult

PATCHING_METHODS: dict[str, Callable[..., PatchingResult]] = {
    "exact": activation_patching,
    "atp": attribution_patching,
    "atp*": attribution_patching_star,
}
"""``exact``: one patched run per cell (the fast path); ``atp``: attribution patching, every
cell from one backward pass; ``atp*``: AtP with the QK fix and GradDrop (unsigned)."""
