"""What an ablated activation (or edge) carries instead of its clean value: one vocabulary
for ablation sweeps, circuit evaluation and everything built on them.

* ``resample``: its value on the paired corrupted prompt (the task's corruption);
* ``mean``: its mean over the corrupted prompts' real tokens;
* ``zero``: zero.
"""

from __future__ import annotations

from mechscope.errors import InputError, closest

ABLATIONS = ("resample", "mean", "zero")
"""Every ablation, the default (resample) first."""


def check_ablation(ablation: str, field: str = "ablation") -> str:
    """``ablation`` if it is one of :data:`ABLATIONS`, else an error naming the choices."""
    if ablation not in ABLATIONS:
        hint = closest(str(ablation), ABLATIONS, n=1)
        raise InputError(f"{field} must be one of {', '.join(ABLATIONS)}; received {ablation!r}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return ablation
