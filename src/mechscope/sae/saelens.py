"""Save and load sparse dictionaries in SAELens' directory layout.

    save_sae(result.sae, "sae/")            # SAELens: SAE.load_from_disk("sae/")
    sae = load_sae("sae/")                  # or a directory SAELens wrote

A directory holds ``cfg.json`` and ``sae_weights.safetensors`` (SAELens ≥ 6):

* weights: ``W_enc`` (d_in d_sae), ``b_enc`` (d_sae), ``W_dec`` (d_sae d_out), ``b_dec``
  (d_out); ``threshold`` (d_sae) for JumpReLU-style inference; ``W_skip`` (d_out d_in)
  for skip transcoders;
* ``cfg.json``: ``architecture``, ``d_in``, ``d_sae``, ``dtype``, ``device``,
  ``apply_b_dec_to_input``, ``normalize_activations``, ``reshape_activations``, ``k``
  and ``rescale_acts_by_decoder_norm`` for ``topk``, ``d_out`` for transcoders, and
  ``metadata`` (``sae_lens_version``, ``hook_name``, ``model_name``, ``hook_name_out``…).

Architectures map as SAELens saves them: ``relu`` → ``standard`` (``transcoder``,
``skip_transcoder``); ``topk`` → ``topk``; ``jumprelu`` → ``jumprelu``
(``jumprelu_transcoder``, ``jumprelu_skip_transcoder``); ``batchtopk`` → ``jumprelu``
with its one threshold repeated per latent, the way SAELens saves its own BatchTopK
SAEs, with ``metadata.training_architecture = "batchtopk"`` and ``k`` so that
:func:`load_sae` gives a ``batchtopk`` SAE back. SAELens has no TopK transcoder; those
are written as ``topk_transcoder``/``topk_skip_transcoder`` in the same layout, which
:func:`load_sae` reads and SAELens refuses (unknown architecture).

Input/output scales are folded into the weights first, so what is saved reads raw
activations (``normalize_activations: "none"``). Writing goes through a temporary
directory renamed into place: a failure never leaves a half-written SAE. Only
safetensors are read: nothing is unpickled.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mechscope.errors import InputError
from mechscope.sae.config import SAEConfig
from mechscope.sae.model import SparseAutoencoder

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
LAYOUT_VERSION = "6.0.0"
"""Written as ``metadata.sae_lens_version``: the SAELens release whose layout this is
(SAELens reads configs without a version, or older ones, as its pre-6 format)."""
_SAELENS_FILES = {CFG_FILENAME, WEIGHTS_FILENAME, "sparsity.safetensors"}

# SAELens architecture -> (our architecture, transcoder?, skip?)
_FROM_SAELENS = {
    "standard": ("relu", False, False),
    "topk": ("topk", False, False),
    "jumprelu": ("jumprelu", False, False),
    "transcoder": ("relu", True, False),
    "skip_transcoder": ("relu", True, True),
    "jumprelu_transcoder": ("jumprelu", True, False),
    "jumprelu_skip_transcoder": ("jumprelu", True, True),
    "topk_transcoder": ("topk", True, False),  # mechscope's: SAELens has no TopK transcoder
    "topk_skip_transcoder": ("topk", True, True),
}
_TO_SAELENS = {value: key for key, value in _FROM_SAELENS.items()}


# ---------------------------------------------------------------------- save
def save_sae(sae: SparseAutoencoder, directory: str | Path) -> Path:
    """Write ``sae`` (scales folded; ``sae`` itself unchanged) to ``directory`` in SAELens' layout.

    An existing directory is replaced only if it holds nothing but SAELens files.
    """
    directory = Path(directory)
    _check_replaceable(directory)
    folded = copy.deepcopy(sae)
    folded.fold_scales()
    cfg_json, tensors = _to_saelens(folded)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp / WEIGHTS_FILENAME)
        (tmp / CFG_FILENAME).write_text(json.dumps(cfg_json, indent=1) + "\n")
        _swap_in(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _check_replaceable(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file; give a directory for the SAE (it is created if missing)")
    if directory.is_dir():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in _SAELENS_FILES)
        if foreign:
            raise InputError(
                f"{directory} holds files that are not an SAE's ({', '.join(foreign[:5])}); "
                "saving would replace them; fix: give a new or empty directory"
            )


def _swap_in(tmp: Path, directory: Path) -> None:
    if not directory.exists():
        os.replace(tmp, directory)
        return
    old = directory.parent / f".{directory.name}.old-{os.getpid()}"
    os.replace(directory, old)
    try:
        os.replace(tmp, directory)
    except OSError:
        os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _to_saelens(sae: SparseAutoencoder) -> tuple[dict, dict[str, Tensor]]:
    cfg = sae.cfg
    arch = "jumprelu" if cfg.architecture == "batchtopk" else cfg.architecture
    tensors = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec}
    if cfg.architecture in ("jumprelu", "batchtopk"):
        tensors["threshold"] = sae.thresholds.clone()
    if sae.W_skip is not None:
        tensors["W_skip"] = sae.W_skip.T
    metadata = {"sae_lens_version": LAYOUT_VERSION, "written_by": f"mechscope {_mechscope_version()}"}
    for key in ("hook_name", "model_name", "hook_name_out"):
        if getattr(cfg, key) is not None:
            metadata[key] = getattr(cfg, key)
    if cfg.architecture == "batchtopk":
        metadata["training_architecture"] = "batchtopk"
        metadata["training_architecture_details"] = {"k": cfg.k}
    out = {
        "architecture": _TO_SAELENS[(arch, cfg.is_transcoder, cfg.skip)],
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": str(sae.W_enc.dtype).removeprefix("torch."),
        "device": "cpu",
        "apply_b_dec_to_input": not cfg.is_transcoder,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": metadata,
    }
    if cfg.is_transcoder:
        out["d_out"] = cfg.d_out
    if cfg.architecture == "topk":
        out.update(k=cfg.k, rescale_acts_by_decoder_norm=False)
    if cfg.architecture in ("jumprelu", "batchtopk"):  # not read by SAELens' inference class; kept for training
        out.update(jumprelu_bandwidth=cfg.jumprelu_bandwidth, jumprelu_init_threshold=cfg.jumprelu_init_threshold)
    return out, tensors


def _mechscope_version() -> str:
    try:
        return version("mechscope")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


# ---------------------------------------------------------------------- load
def load_sae(directory: str | Path, *, device: str | torch.device | None = None,
             dtype: torch.dtype | None = None) -> SparseAutoencoder:
    """The SAE or transcoder in a SAELens-layout ``directory`` (eval mode).

    ``dtype`` defaults to the config's ``dtype``; ``device`` to the CPU.
    """
    directory = Path(directory)
    cfg_path, weights_path = directory / CFG_FILENAME, directory / WEIGHTS_FILENAME
    if not cfg_path.is_file() or not weights_path.is_file():
        raise InputError(
            f"{directory} is not an SAE directory in SAELens' layout: expected {CFG_FILENAME} and {WEIGHTS_FILENAME}; "
            f"found {sorted(p.name for p in directory.iterdir()) if directory.is_dir() else 'no such directory'}"
        )
    try:
        raw = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{cfg_path} is not valid JSON ({error})") from None
    tensors = load_file(weights_path)
    arch, is_transcoder, skip = _architecture(raw, cfg_path)
    meta = {**{k: raw[k] for k in ("hook_name", "hook_point", "model_name", "hook_name_out") if k in raw},
            **(raw.get("metadata") or {})}
    dtype = dtype or _dtype(raw.get("dtype", "float32"), cfg_path)
    _check_normalisation(raw, cfg_path)
    _check_tensors(tensors, arch, skip, cfg_path)
    weights = {k: v.to(torch.float64) for k, v in tensors.items()}  # fold in high precision, cast once
    d_in, d_sae = _int(raw, "d_in", cfg_path), _int(raw, "d_sae", cfg_path)
    d_out = _int(raw, "d_out", cfg_path) if is_transcoder else None
    _check_shapes(weights, d_in, d_sae, d_out or d_in, cfg_path)
    k = _int(raw, "k", cfg_path) if arch == "topk" else None
    if arch == "topk" and raw.get("rescale_acts_by_decoder_norm"):
        _fold_decoder_norm(weights)  # SAELens scales pre-acts by ‖W_dec,i‖ and latents back
    if not is_transcoder and raw.get("apply_b_dec_to_input") is False:
        weights["b_enc"] = weights["b_enc"] + weights["b_dec"] @ weights["W_enc"]  # ours always subtracts b_dec
    if is_transcoder and raw.get("apply_b_dec_to_input") is True:
        raise InputError(f"{cfg_path}: apply_b_dec_to_input is true for a transcoder (SAELens refuses it too); fix: set it to false")
    batchtopk_k = _batchtopk_k(meta, raw, weights) if arch == "jumprelu" else None
    if batchtopk_k is not None:
        arch, k = "batchtopk", batchtopk_k
    cfg = SAEConfig(
        d_in=d_in, d_sae=d_sae, architecture=arch, k=k, d_out=d_out, skip=skip,
        hook_name=meta.get("hook_name") or meta.get("hook_point"), hook_name_out=meta.get("hook_name_out") if is_transcoder else None,
        model_name=meta.get("model_name"),
        **{key: float(raw[key]) for key in ("jumprelu_bandwidth", "jumprelu_init_threshold") if raw.get(key)},
    )
    return _build(cfg, weights, dtype, device)


def _architecture(raw: dict, path: Path) -> tuple[str, bool, bool]:
    name = raw.get("architecture")
    if name is None:  # SAELens < 6 configs: the activation function says it
        activation = raw.get("activation_fn_str") or raw.get("activation_fn") or "relu"
        name = "topk" if activation == "topk" else "standard" if activation == "relu" else activation
        if name == "topk" and "k" not in raw:
            raw["k"] = (raw.get("activation_fn_kwargs") or {}).get("k")
    if name not in _FROM_SAELENS:
        raise InputError(
            f"{path}: architecture {name!r} is not supported; expected one of {', '.join(_FROM_SAELENS)}"
        )
    return _FROM_SAELENS[name]


def _dtype(name, path: Path) -> torch.dtype:
    dtype = getattr(torch, str(name).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise InputError(f"{path}: dtype {name!r} is not a torch dtype (expected e.g. 'float32' or 'bfloat16')")
    return dtype


def _int(raw: dict, key: str, path: Path) -> int:
    value = raw.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{path}: {key} must be a positive integer; received {value!r}")
    return value


def _check_normalisation(raw: dict, path: Path) -> None:
    norm = raw.get("normalize_activations", "none")
    if norm in ("none", None, False):
        pass
    elif norm in ("expected_average_only_in", True):
        warnings.warn(
            f"{path}: normalize_activations={norm!r} with no folded scale: like SAELens, this SAE reads the "
            "activations as given; scale them as it was trained on (or fold the scale into its weights)",
            stacklevel=3,
        )
    else:
        raise InputError(
            f"{path}: normalize_activations={norm!r} is applied at run time by SAELens and cannot be represented "
            "here; expected 'none' (or 'expected_average_only_in')"
        )
    if raw.get("reshape_activations", "none") not in ("none", None):
        warnings.warn(f"{path}: reshape_activations={raw['reshape_activations']!r}: give this SAE its input "
                      "with the heads flattened into one axis", stacklevel=3)


def _check_tensors(tensors: dict[str, Tensor], arch: str, skip: bool, path: Path) -> None:
    required = {"W_enc", "b_enc", "W_dec", "b_dec"} | ({"W_skip"} if skip else set())
    allowed = required | ({"threshold", "log_threshold"} if arch == "jumprelu" else set())
    scaling = tensors.pop("scaling_factor", None)
    if scaling is not None and not torch.equal(scaling, torch.ones_like(scaling)):
        raise InputError(f"{path}: a scaling_factor other than 1 (SAELens' old fine-tuning scale) is not supported")
    missing = sorted(required - tensors.keys())
    if arch == "jumprelu" and not {"threshold", "log_threshold"} & tensors.keys():
        missing.append("threshold")
    extra = sorted(tensors.keys() - allowed)
    if missing or extra:
        raise InputError(
            f"{path.parent / WEIGHTS_FILENAME}: expected tensors {sorted(required)}"
            f"{' and threshold' if arch == 'jumprelu' else ''}; missing {missing or 'none'}, unexpected {extra or 'none'}"
        )


def _check_shapes(weights: dict[str, Tensor], d_in: int, d_sae: int, d_out: int, path: Path) -> None:
    expected = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_out), "b_dec": (d_out,),
                "W_skip": (d_out, d_in), "threshold": (d_sae,), "log_threshold": (d_sae,)}
    for name, tensor in weights.items():
        if tuple(tensor.shape) != expected[name]:
            raise InputError(
                f"{path.parent / WEIGHTS_FILENAME}: {name} must have shape {expected[name]} for d_in={d_in}, "
                f"d_sae={d_sae}{f', d_out={d_out}' if d_out != d_in else ''}; received {tuple(tensor.shape)}"
            )


def _fold_decoder_norm(weights: dict[str, Tensor]) -> None:
    norms = weights["W_dec"].norm(dim=1)
    weights["W_enc"] = weights["W_enc"] * norms
    weights["b_enc"] = weights["b_enc"] * norms
    weights["W_dec"] = weights["W_dec"] / norms[:, None]


def _batchtopk_k(meta: dict, raw: dict, weights: dict[str, Tensor]) -> int | None:
    """k if this JumpReLU is a saved BatchTopK (one threshold for all latents), else None."""
    if meta.get("training_architecture") != "batchtopk" or "threshold" not in weights:
        return None
    k = (meta.get("training_architecture_details") or {}).get("k", raw.get("k"))
    threshold = weights["threshold"]
    if not isinstance(k, (int, float)) or float(k) != int(k) or int(k) < 1 or not torch.all(threshold == threshold[0]):
        return None
    return int(k)


def _build(cfg: SAEConfig, weights: dict[str, Tensor], dtype: torch.dtype, device) -> SparseAutoencoder:
    sae = SparseAutoencoder(cfg, dtype=dtype, device="meta")  # no memory, no RNG: every tensor is assigned below
    state = {k: weights[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    if cfg.skip:
        state["W_skip"] = weights["W_skip"].T
    scalar = torch.zeros((), dtype=torch.float64)
    if cfg.architecture == "jumprelu":
        # SAELens: relu(pre)·[pre > θ]; ours: pre·[pre > θ] with θ = exp(log θ) >= 0. A θ <= 0
        # gates nothing beyond the ReLU, so it is stored as θ = 0 (log θ = -inf).
        state["log_threshold"] = weights["log_threshold"] if "log_threshold" in weights else weights["threshold"].clamp(min=0).log()
    if cfg.architecture == "batchtopk":
        scalar = weights["threshold"][0].clamp(min=0)
    state.update(threshold=scalar, input_scale=torch.ones((), dtype=torch.float64), output_scale=torch.ones((), dtype=torch.float64))
    target = torch.device(device) if device is not None else torch.device("cpu")
    sae.load_state_dict({k: v.to(device=target, dtype=dtype).contiguous() for k, v in state.items()}, assign=True)
    return sae.eval()
