"""An exact hash of a model's weights, to key caches of statistics computed from them.

::

    weights_hash(model)        # '3f9c0a…' (32 hex digits); changes if any weight changes

Every parameter's name, shape, dtype and bytes go into a BLAKE2b digest (about a second
for a 135M-parameter model). The digest is remembered per model together with each
parameter's in-place version counter, so asking again is free until a weight is
modified in place (an edit, a restore), when it is recomputed.
"""

from __future__ import annotations

import hashlib
import weakref

import torch

_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_hash(model) -> str:
    """BLAKE2b (128-bit) of every parameter of ``model`` (a HookedModel or an nn.Module)."""
    module = getattr(model, "hf_model", model)
    params = sorted(module.named_parameters(), key=lambda item: item[0])
    versions = tuple((name, param._version, param.data_ptr()) for name, param in params)
    memo = _MEMO.get(module)
    if memo is not None and memo[0] == versions:
        return memo[1]
    digest = hashlib.blake2b(digest_size=16)
    for name, param in params:
        tensor = param.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy() if tensor.numel() else b"")
    value = digest.hexdigest()
    _MEMO[module] = (versions, value)
    return value
