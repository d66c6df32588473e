"""mechscope: mechanistic interpretability of unmodified Hugging Face language models.

    import mechscope
    model = mechscope.load_model("smollm2-135m")
    logits, cache = model.run_with_cache("The Eiffel Tower is located in the city of")

The names below are imported when first used, not by ``import mechscope``: loading torch
and transformers takes seconds, and ``mechscope --help`` (which imports this package)
must answer at once. :data:`_LAZY` says which module each name comes from; the
``TYPE_CHECKING`` imports say the same to type checkers and editors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mechscope.errors import MechscopeError

if TYPE_CHECKING:
    from mechscope.hooks import ActivationCache, HookedModel, HookPoint, ResidualStack, TokenBatch, hook_name
    from mechscope.hooks.adapters import ModelConfig
    from mechscope.models import load_model

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ActivationCache": "mechscope.hooks",
    "HookPoint": "mechscope.hooks",
    "HookedModel": "mechscope.hooks",
    "ModelConfig": "mechscope.hooks.adapters",
    "ResidualStack": "mechscope.hooks",
    "TokenBatch": "mechscope.hooks",
    "hook_name": "mechscope.hooks",
    "load_model": "mechscope.models",
}
"""Each public name of the package root, and the module it is imported from on first use."""

__all__ = ["MechscopeError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mechscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
