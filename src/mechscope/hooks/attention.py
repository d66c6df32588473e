"""An attention function, registered with transformers, that exposes attention internals.

Hugging Face models look their attention function up by ``config._attn_implementation``
in ``AttentionInterface``. mechscope registers one more, ``"mechscope"``, that computes
attention the way transformers' eager code does, but passes q, k, v, the scores, the
pattern and z through the hooks of that layer::

    q, k, v --hook_q/k/v--> scores = q·kᵀ·scaling (+ softcap, + mask) --hook_attn_scores-->
    pattern = softmax(scores) --hook_pattern--> z = pattern·v --hook_z--> o_proj

The model only uses this function inside a hooks context that asks for one of these
points (``HookedModel`` switches ``_attn_implementation`` there and back); layers with no
attention hooks then run the model's own kernel (SDPA), so the rest of the model keeps
its speed. Masks come in SDPA's format (boolean, or None for plain causal attention),
built by transformers' own ``sdpa_mask``, so padding and sliding windows are respected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION_NAME = "mechscope"

RunHooks = Callable[[str, Tensor], Tensor]
"""``run(kind, tensor)``: pass ``tensor`` through the hooks of this layer's point ``kind``."""


@dataclass
class AttentionSite:
    """How one attention module runs while mechscope's attention function is active."""

    run: RunHooks | None = None
    """Runs the layer's attention hooks; None when this layer has none."""
    eager: bool = False
    """Compute with eager math even without hooks (the model was loaded with ``eager``)."""
    prefix: tuple[Tensor, Tensor] | None = None
    """Keys and values (batch, kv_head, prefix_pos, d_head) of earlier positions, put in
    front of this call's own: lets a run recompute only the positions from some point on
    (see :mod:`mechscope.hooks.replay`)."""


# Attention modules currently inside a hooks context, and how each should run.
# Filled and emptied only by attention_sites() below.
SITES: dict[nn.Module, AttentionSite] = {}


@contextmanager
def attention_sites(adapter, sites: Mapping[int, AttentionSite]) -> Iterator[None]:
    """Inside the block, the attention modules of the layers in ``sites`` run through
    mechscope's attention function with their site; on exit (also on error) the model's
    own attention implementation is back and no site is left behind."""
    modules = {layer: adapter.in_block(layer, adapter.attn_path) for layer in sites}
    config = adapter.hf_model.config
    restore = config._attn_implementation
    try:
        for layer, site in sites.items():
            SITES[modules[layer]] = site
        config._attn_implementation = ATTENTION_NAME
        yield
    finally:
        config._attn_implementation = restore
        for module in modules.values():
            SITES.pop(module, None)


def _no_hooks(kind: str, tensor: Tensor) -> Tensor:
    return tensor


def _apply_mask(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Mask scores the way SDPA would: a boolean mask keeps True, None means causal."""
    min_value = torch.finfo(scores.dtype).min
    if mask is None:
        n_query, n_key = scores.shape[-2:]
        if n_query == 1:
            return scores
        # SDPA's is_causal aligns the causal triangle to the upper left.
        causal = torch.ones(n_query, n_key, dtype=torch.bool, device=scores.device).tril()
        return scores.masked_fill(~causal, min_value)
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, min_value)
    return scores + mask


def _causal_after(n_prefix: int, n_query: int, device: torch.device) -> Tensor:
    """Boolean mask for queries at positions n_prefix … over keys 0 … n_prefix + n_query."""
    query = torch.arange(n_prefix, n_prefix + n_query, device=device)[:, None]
    key = torch.arange(n_prefix + n_query, device=device)[None, :]
    return (key <= query)[None, None]


def eager_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    *,
    scaling: float | None,
    dropout: float,
    softcap: float | None,
    run: RunHooks,
    prefix: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """transformers' eager attention with a hook call at each internal tensor.

    Inputs are (batch, head, pos, d_head) as transformers passes them; hooks see the
    canonical (batch, pos, head, d_head) layout. Returns z as (batch, pos, head, d_head).
    A ``prefix`` of earlier keys and values joins after the hooks: hook_k/hook_v hold
    this call's positions, like hook_q; the scores and pattern span all keys.
    """
    q = run("attn.hook_q", query.transpose(1, 2)).transpose(1, 2)
    k = run("attn.hook_k", key.transpose(1, 2)).transpose(1, 2)
    v = run("attn.hook_v", value.transpose(1, 2)).transpose(1, 2)
    k, v = _with_prefix(prefix, k, v)
    if scaling is None:
        scaling = q.shape[-1] ** -0.5
    groups = q.shape[1] // k.shape[1]
    scores = torch.matmul(q, repeat_kv(k, groups).transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = run("attn.hook_attn_scores", _apply_mask(scores, attention_mask))
    # Softmax in at least float32, as transformers does for half precision.
    pattern = nn.functional.softmax(scores, dim=-1, dtype=torch.promote_types(q.dtype, torch.float32)).to(q.dtype)
    pattern = run("attn.hook_pattern", pattern)
    pattern = nn.functional.dropout(pattern, p=dropout, training=module.training)
    z = torch.matmul(pattern, repeat_kv(v, groups)).transpose(1, 2)
    z = run("attn.hook_z", z)
    return z.contiguous(), pattern


def mechscope_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    softcap: float | None = None,
    **kwargs,
) -> tuple[Tensor, Tensor | None]:
    """The function transformers calls as ``attn_implementation="mechscope"``."""
    site = SITES.get(module) or AttentionSite()
    if site.prefix is not None and attention_mask is None:
        # plain causal attention, but the queries now start after the prefix
        attention_mask = _causal_after(site.prefix[0].shape[2], query.shape[2], query.device)
    if site.run is None and not site.eager:
        key, value = _with_prefix(site.prefix, key, value)
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    return eager_attention(
        module, query, key, value, attention_mask,
        scaling=scaling, dropout=dropout, softcap=softcap, run=site.run or _no_hooks, prefix=site.prefix,
    )


def _with_prefix(prefix: tuple[Tensor, Tensor] | None, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    if prefix is None:
        return key, value
    return torch.cat([prefix[0].to(key.dtype), key], dim=2), torch.cat([prefix[1].to(value.dtype), value], dim=2)


AttentionInterface.register(ATTENTION_NAME, mechscope_attention)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
