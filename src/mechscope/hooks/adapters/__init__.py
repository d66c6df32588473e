"""Architecture adapters, one small file per Hugging Face model family.

Adding a family means adding one file with an :class:`Adapter` subclass and listing it
in ``ADAPTERS``.
"""

from __future__ import annotations

from torch import nn

from mechscope.errors import UnsupportedArchitectureError
from mechscope.hooks.adapters.base import Adapter, ModelConfig
from mechscope.hooks.adapters.gemma3 import Gemma3Adapter
from mechscope.hooks.adapters.gpt2 import GPT2Adapter
from mechscope.hooks.adapters.gpt_neox import GPTNeoXAdapter
from mechscope.hooks.adapters.llama import LlamaAdapter

ADAPTERS: tuple[type[Adapter], ...] = (GPT2Adapter, LlamaAdapter, Gemma3Adapter, GPTNeoXAdapter)


def adapter_for(hf_model: nn.Module) -> Adapter:
    """The adapter for a Hugging Face causal LM, chosen by ``config.model_type``."""
    model_type = getattr(getattr(hf_model, "config", None), "model_type", None)
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter(hf_model)
    known = sorted(t for a in ADAPTERS for t in a.model_types)
    raise UnsupportedArchitectureError(
        f"no mechscope adapter for model_type {model_type!r} ({type(hf_model).__name__}); "
        f"supported: {', '.join(known)}. Add one small file under mechscope/hooks/adapters/"
    )


__all__ = ["ADAPTERS", "Adapter", "ModelConfig", "adapter_for"]
