"""mechscope: mechanistic interpretability of unmodified Hugging Face language models.

    import mechscope
    model = mechscope.load_model("smollm2-135m")
    logits, cache = model.run_with_cache("The Eiffel Tower is located in the city of")
"""

from mechscope.errors import MechscopeError
from mechscope.hooks import ActivationCache, HookedModel, HookPoint, ResidualStack, TokenBatch, hook_name
from mechscope.hooks.adapters import ModelConfig
from mechscope.models import load_model

__version__ = "0.1.0"

__all__ = [
    "ActivationCache",
    "HookPoint",
    "HookedModel",
    "MechscopeError",
    "ModelConfig",
    "ResidualStack",
    "TokenBatch",
    "hook_name",
    "load_model",
]
