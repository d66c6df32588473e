"""HookedModel, hook points and the activation cache."""

from mechscope.hooks.activation_cache import ActivationCache, ResidualStack
from mechscope.hooks.hooked_model import HookedModel
from mechscope.hooks.points import HookPoint, hook_name
from mechscope.hooks.tokens import TokenBatch

__all__ = ["ActivationCache", "HookPoint", "HookedModel", "ResidualStack", "TokenBatch", "hook_name"]
