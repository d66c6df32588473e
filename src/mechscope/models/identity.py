"""Which weights a model has: an exact hash, so that results can be keyed by model.

::

    weights_hash(model)      # 'b3c1…' (32 hex digits): the same for the same weights, always

Every parameter's name, shape, dtype and bytes enter a BLAKE2b hash, in sorted order of
names. The hash is remembered per model and recomputed only when a parameter changed in
place (torch counts in-place changes per tensor), so an edited model (ROME, fine-tuning)
never shares a hash with the original, and asking twice costs nothing.
"""

from __future__ import annotations

import hashlib
import weakref

import torch

_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""hf_model -> (state of its parameters, hash)."""


def weights_hash(model) -> str:
    """The hash of a :class:`~mechscope.HookedModel`'s (or an ``nn.Module``'s) weights."""
    module = getattr(model, "hf_model", model)
    params = sorted(module.state_dict(keep_vars=True).items())
    state = tuple((name, id(p), p._version) for name, p in params)
    known = _memo.get(module)
    if known is not None and known[0] == state:
        return known[1]
    digest = hashlib.blake2b(digest_size=16)
    seen: dict[int, str] = {}
    for name, param in params:
        tensor = param.detach()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        if id(param) in seen:  # tied weights: hashed once, named twice
            digest.update(seen[id(param)].encode())
            continue
        seen[id(param)] = name
        flat = tensor.reshape(-1).contiguous().cpu()
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    value = digest.hexdigest()
    _memo[module] = (state, value)
    return value
