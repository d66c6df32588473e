"""``load_model``: a name, a path or a hub id → a :class:`HookedModel`.

Accepted, in the order they are tried::

    load_model("smollm2-135m")              # a bundled model (see ``mechscope models``)
    load_model("path/to/model.gguf")        # any GGUF file, dequantized once and cached
    load_model("path/to/hf_dir")            # a local Hugging Face directory (safetensors)
    load_model("EleutherAI/pythia-70m")     # a hub id, through ``from_pretrained``

Only safetensors and GGUF weights are read; a pickled checkpoint (``*.bin``, ``*.pt``)
is refused, and ``trust_remote_code`` is never set.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import torch

from mechscope.errors import ModelNotFoundError, UnsafeWeightsError, UnsupportedArchitectureError
from mechscope.hooks.adapters import ADAPTERS
from mechscope.hooks.hooked_model import HookedModel
from mechscope.models import cache
from mechscope.models.registry import BUNDLED, DEFAULT_MODEL

_PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> HookedModel:
    """Load a causal language model and wrap it as a :class:`HookedModel`.

    Args:
        name: a bundled model name, a ``.gguf`` file, a local Hugging Face directory, or a
            hub id (``org/name``).
        device: where to put the model (default: CPU).
        dtype: parameter dtype (default float32; GGUF weights are dequantized to it).
        attn_implementation: transformers' attention kernel outside hook contexts
            (``"sdpa"`` by default, or ``"eager"``).
    """
    source = _resolve(name)
    with _quiet_progress():  # reading safetensors takes a fraction of a second: no bar
        hf_model, tokenizer = _from_pretrained(source, name, dtype, attn_implementation)
    if device is not None:
        hf_model.to(device)
    hf_model.eval()
    return HookedModel(hf_model, tokenizer, name=name)


def _resolve(name: str) -> str:
    """The local directory or hub id that ``from_pretrained`` should read."""
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError(f"expected a model name, path or hub id; received {name!r}")
    if name in BUNDLED:
        return str(_bundled(name))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(_gguf(path))
    if path.is_dir():
        return str(_local_dir(path))
    if path.exists():
        raise UnsafeWeightsError(
            f"{name} is a file but not a .gguf; pass a .gguf file or a Hugging Face directory with safetensors"
        )
    if name.endswith(".gguf") or name.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"no such file or directory: {name}")
    if "/" in name:
        return name  # a hub id
    raise ModelNotFoundError(
        f"unknown model {name!r}; known names: {', '.join(BUNDLED)}. For a hub model give its full id "
        f"(e.g. openai-community/gpt2), or give a local directory or .gguf file"
    )


def _bundled(name: str) -> Path:
    model = BUNDLED[name]
    entry = cache.entry_dir(model.cache_key())
    if cache.is_complete(entry):
        return entry
    work = cache.cache_root() / "gguf"
    work.mkdir(parents=True, exist_ok=True)
    gguf = model.gguf_path(work)  # raises with the pip command if not installed
    _announce(name, entry)
    cache.dequantize_to_cache(gguf, entry, {"bundled": name, "version": model.version(), "gguf": str(gguf)})
    if gguf.parent == work:  # assembled by us only to be dequantized
        gguf.unlink(missing_ok=True)
    return entry


def _gguf(path: Path) -> Path:
    path = path.resolve()
    stat = path.stat()
    fingerprint = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-._" else "_" for c in path.stem)
    entry = cache.entry_dir(f"{stem}-{fingerprint}")
    if cache.is_complete(entry):
        return entry
    _announce(path.name, entry)
    return cache.dequantize_to_cache(path, entry, {"gguf": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def _local_dir(path: Path) -> Path:
    if any(path.glob("*.safetensors")):
        return path
    pickled = sorted(p.name for pattern in _PICKLED for p in path.glob(pattern))
    if pickled:
        raise UnsafeWeightsError(
            f"{path} holds only pickled weights ({', '.join(pickled[:3])}); mechscope loads safetensors or GGUF "
            f"and never unpickles. Convert once where you trust the file: "
            f"AutoModelForCausalLM.from_pretrained(dir).save_pretrained(new_dir, safe_serialization=True)"
        )
    ggufs = sorted(path.glob("*.gguf"))
    if ggufs:
        raise ModelNotFoundError(f"{path} has no safetensors but has a GGUF file; pass the file itself: {ggufs[0]}")
    raise ModelNotFoundError(f"{path} has no model weights (*.safetensors); is it a Hugging Face model directory?")


def _from_pretrained(source: str, name: str, dtype: torch.dtype, attn_implementation: str | None):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kwargs = {"dtype": dtype, "use_safetensors": True}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    local_only = {} if Path(source).exists() else _hub_access(source)
    try:
        # The config first: an unsupported family is refused before any weights download.
        _check_supported(AutoConfig.from_pretrained(source, **local_only), name)
        tokenizer = AutoTokenizer.from_pretrained(source, **local_only)
        hf_model = AutoModelForCausalLM.from_pretrained(source, **kwargs, **local_only)
    except (OSError, ValueError) as err:
        if Path(source).exists():
            raise ModelNotFoundError(f"could not load {name} from {source}: {_first_line(err)}") from err
        raise ModelNotFoundError(_hub_message(name, err)) from err
    return hf_model, tokenizer


def _check_supported(config, name: str) -> None:
    supported = {model_type for adapter in ADAPTERS for model_type in adapter.model_types}
    if config.model_type not in supported:
        raise UnsupportedArchitectureError(
            f"{name} is a {config.model_type!r} model; mechscope has adapters for {', '.join(sorted(supported))}. "
            f"Adding a family is one small file under mechscope/hooks/adapters/"
        )


def _hub_access(hub_id: str) -> dict:
    """Fail fast without network (huggingface_hub would retry for about a minute), or
    read the local hub cache only when the model is there."""
    from huggingface_hub import constants, try_to_load_from_cache

    proxied = any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"))
    if constants.HF_HUB_OFFLINE or proxied or _hub_reachable(constants.ENDPOINT):
        return {}
    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return {"local_files_only": True}
    raise ModelNotFoundError(_hub_message(hub_id, OSError("cannot connect to the hub")))


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_message(name: str, err: Exception) -> str:
    text = str(err)
    offline = any(word in text.lower() for word in ("connect", "offline", "network", "resolve", "timed out"))
    reason = "there is no network (or HF_HUB_OFFLINE is set) and it is not in the local hub cache" if offline else _first_line(err)
    return (
        f"could not load hub model {name!r}: {reason}. Download it where there is network "
        f"(huggingface-cli download {name} --local-dir DIR) and pass the local path: load_model('DIR')"
    )


@contextmanager
def _quiet_progress() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _announce(name: str, entry: Path) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold]mechscope[/]: dequantizing {name} once; cached at {entry}", soft_wrap=True)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
