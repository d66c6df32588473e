"""Peers to compare against, built on the very same weights; each optional.

transformer-lens is never a dependency of mechscope; install it beside the project to
get its side of a benchmark (``pip install transformer-lens``).
"""

from __future__ import annotations

import copy

import torch


def transformer_lens_bridge(model):
    """TransformerLens' TransformerBridge over a copy of ``model``'s HF weights, or None.

    ``boot_transformers`` rewires the HF model it is given (eager attention, its own
    block modules), so the bridge gets a deep copy and mechscope's model stays as it was.
    No compatibility mode: it would fold and centre the weights, changing activations.
    """
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError:
        return None
    hf_copy = copy.deepcopy(model.hf_model)
    tokenizer = copy.deepcopy(model.tokenizer)
    return TransformerBridge.boot_transformers(
        model.name, hf_model=hf_copy, tokenizer=tokenizer, device="cpu", dtype=torch.float32
    )
