"""The on-disk cache of dequantized GGUF weights, as safetensors.

transformers dequantizes a GGUF file in tens of seconds; the result is written once as
``model.safetensors`` + ``config.json`` + tokenizer files, and later loads read that
(well under a second for SmolLM2). The directory is chosen by, in order:
``$MECHSCOPE_CACHE_DIR``, ``$XDG_CACHE_HOME/mechscope``, ``~/.cache/mechscope``.

An entry is written into a temporary directory and renamed into place only when
complete, so an interrupted conversion never leaves a half-written entry behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

MANIFEST = "mechscope-cache.json"
CACHE_FORMAT = 1


def cache_root() -> Path:
    """Where mechscope keeps its files."""
    if os.environ.get("MECHSCOPE_CACHE_DIR"):
        return Path(os.environ["MECHSCOPE_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "mechscope"


def entry_dir(key: str) -> Path:
    """The cache entry for ``key`` (it may not exist yet)."""
    return cache_root() / "models" / key


def is_complete(entry: Path) -> bool:
    manifest = entry / MANIFEST
    if not all((entry / name).is_file() for name in (MANIFEST, "model.safetensors", "config.json")):
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == CACHE_FORMAT
    except (OSError, ValueError):
        return False


def dequantize_to_cache(gguf: Path, entry: Path, source: dict) -> Path:
    """Dequantize ``gguf`` with transformers and store it as a safetensors entry."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.parent / f".{entry.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(_untied_state(model), tmp / "model.safetensors", metadata={"format": "pt"})
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the saved weights are plain float32
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / MANIFEST).write_text(json.dumps({"format": CACHE_FORMAT, "source": source}, indent=2))
        if entry.exists() and not is_complete(entry):  # stale: an older format or a damaged entry
            shutil.rmtree(entry)
        try:
            os.replace(tmp, entry)
        except OSError:
            if not is_complete(entry):  # not another process winning the race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def _untied_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied weights stored once (transformers re-ties them on load)."""
    seen: set[tuple] = set()
    state = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.shape, tensor.stride())
        if tensor.numel() and key in seen:
            continue
        seen.add(key)
        state[name] = tensor.contiguous()
    return state
