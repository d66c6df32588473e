"""Exact, pickle-free encoding of results for the store: JSON with tensors set aside.

::

    data, tensors = encode(result)          # JSON-able tree, {name: tensor}
    decode(data, tensors) == result         # the same classes, the same numbers, bit for bit

:meth:`Result.to_dict` is for people (tensors become lists, classes become a ``type``
string); this is for getting the object back. Every value is tagged with what it was:
a dataclass with its module and class, a tuple, a frozenset, a dict with non-string keys
as pairs, a tensor as a reference to an entry of ``tensors`` (saved as safetensors beside
the JSON), one of mechscope's modules built from a config (an SAE) as that config and its
weights. A class that has its own ``to_dict``/``from_dict`` pair (a :class:`Circuit`
with 70,000 scores) is stored through them instead.

Decoding imports classes only from mechscope's own modules and only dataclasses, so a
tampered store cannot make it run arbitrary code.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path
from typing import Any

import torch

from mechscope.errors import MechscopeError


class CodecError(MechscopeError):
    """Stored data that does not decode: written by another version, or damaged."""


def encode(value: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """``value`` as a JSON-able tree, and the tensors it references by name."""
    tensors: dict[str, torch.Tensor] = {}
    return _encode(value, tensors), tensors


def decode(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The value :func:`encode` encoded."""
    return _decode(data, tensors)


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, torch.nn.Module) and dataclasses.is_dataclass(getattr(value, "cfg", None)):
        # mechscope's own modules (SAEs, transcoders) are built from a config: keep it and the weights
        cls = type(value)
        state = {name: _encode(t, tensors) for name, t in value.state_dict().items()}
        dtype = str(next(value.parameters()).dtype).removeprefix("torch.")
        return {"__module__": f"{cls.__module__}:{cls.__qualname__}", "cfg": _encode(value.cfg, tensors),
                "dtype": dtype, "state": state, "training": value.training}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        where = f"{cls.__module__}:{cls.__qualname__}"
        if hasattr(cls, "from_dict") and "to_dict" in vars(cls):
            return {"__dict_of__": where, "data": _encode(value.to_dict(), tensors)}
        fields = {f.name: _encode(getattr(value, f.name), tensors) for f in dataclasses.fields(value) if f.init}
        return {"__dataclass__": where, "fields": fields}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [_encode(v, tensors) for v in value], "frozen": isinstance(value, frozenset)}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"__pairs__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    raise CodecError(f"cannot store a {type(value).__name__} ({value!r:.80}); results hold dataclasses, "
                     f"tensors, numbers, strings and containers of them")


def _decode(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(data, list):
        return [_decode(v, tensors) for v in data]
    if not isinstance(data, dict):
        return data
    if "__float__" in data:
        return float(data["__float__"])
    if "__tensor__" in data:
        try:
            return tensors[data["__tensor__"]]
        except KeyError:
            raise CodecError(f"a stored result refers to tensor {data['__tensor__']!r}, which is missing") from None
    if "__path__" in data:
        return Path(data["__path__"])
    if "__tuple__" in data:
        return tuple(_decode(v, tensors) for v in data["__tuple__"])
    if "__set__" in data:
        items = [_decode(v, tensors) for v in data["__set__"]]
        return frozenset(items) if data.get("frozen") else set(items)
    if "__pairs__" in data:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in data["__pairs__"]}
    if "__dict_of__" in data:
        return _class(data["__dict_of__"]).from_dict(_decode(data["data"], tensors))
    if "__dataclass__" in data:
        cls = _class(data["__dataclass__"])
        return cls(**{k: _decode(v, tensors) for k, v in data["fields"].items()})
    if "__module__" in data:
        module = _class(data["__module__"], kind=torch.nn.Module)(_decode(data["cfg"], tensors),
                                                                  dtype=getattr(torch, data["dtype"]))
        module.load_state_dict({k: _decode(v, tensors) for k, v in data["state"].items()})
        return module.train(data["training"])
    return {k: _decode(v, tensors) for k, v in data.items()}


def _class(where: str, kind: type | None = None) -> type:
    module, _, name = where.partition(":")
    if module != "mechscope" and not module.startswith("mechscope."):
        raise CodecError(f"refusing to load class {where!r}: stored results only hold mechscope's own classes")
    try:
        cls = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError):
        raise CodecError(f"a stored result names {where!r}, which this version of mechscope does not have; "
                         f"recompute it (--no-cache)") from None
    ok = isinstance(cls, type) and (issubclass(cls, kind) if kind else dataclasses.is_dataclass(cls))
    if not ok:
        raise CodecError(f"refusing to load {where!r}: not a mechscope result class")
    return cls
