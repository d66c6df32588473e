"""Choosing a circuit's size: the smallest circuit whose faithfulness is within a tolerance of 1.

::

    choice = smallest_faithful(f_at, largest=60, tolerance=0.1)    # f_at(size) -> faithfulness
    choice.size, choice.faithfulness, choice.measured

A circuit is faithful when f is close to 1, not when it is large: a circuit that leaves
out the components working against the answer overshoots (f > 1) as surely as one that
misses a helper falls short. Along a ladder of nested circuits (the top-k nodes or edges
for growing k) f rises roughly with k, and, for circuits chosen by signed score, goes
past 1 once every helper is in. The chosen size is the smallest one with
f ≥ 1 − tolerance, found by bisection (f is close to monotone along the ladder, not
exactly; every value used is measured, none assumed). Where that circuit overshoots
(f > 1 + tolerance), or no size reaches 1 − tolerance, the measured size whose f is
closest to 1 is chosen instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mechscope.errors import InputError
from mechscope.results import Result


@dataclass(frozen=True)
class SizeChoice(Result):
    """The size a ladder of nested circuits was cut at, and every faithfulness measured."""

    size: int
    """The chosen rung (1 … largest)."""
    faithfulness: float
    """f of the chosen circuit."""
    measured: tuple[tuple[int, float], ...]
    """Every (rung, f) evaluated, by rung."""
    tolerance: float
    """How far from 1 an f may be and still count as faithful."""

    @property
    def faithful(self) -> bool:
        """Whether the chosen circuit's f is within the tolerance of 1."""
        return abs(1 - self.faithfulness) <= self.tolerance


def smallest_faithful(f_at: Callable[[int], float], largest: int, *, tolerance: float = 0.1,
                      resolution: int = 1) -> SizeChoice:
    """Bisect rungs ``1 … largest`` for the smallest with ``f ≥ 1 − tolerance`` (module
    docstring), to within ``resolution`` rungs."""
    if largest < 1 or resolution < 1:
        raise InputError(f"largest and resolution must be at least 1; received {largest} and {resolution}")
    if not 0 < tolerance < 1:
        raise InputError(f"tolerance is how far from 1 a faithful f may be, in (0, 1); received {tolerance!r}")
    measured: dict[int, float] = {}

    def f(rung: int) -> float:
        if rung not in measured:
            measured[rung] = f_at(rung)
        return measured[rung]

    low, high = 0, largest  # f(low) is below 1 − tolerance (rung 0, the empty circuit, by definition)
    if f(high) >= 1 - tolerance:
        while high - low > resolution:
            mid = (low + high) // 2
            if f(mid) >= 1 - tolerance:
                high = mid
            else:
                low = mid
    size = high
    if abs(1 - f(size)) > tolerance:
        size = min(measured, key=lambda rung: (abs(1 - measured[rung]), rung))
    return SizeChoice(size=size, faithfulness=measured[size], measured=tuple(sorted(measured.items())),
                      tolerance=tolerance)
