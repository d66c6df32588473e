"""Training checkpoints: everything a run needs to go on as if never stopped.

A checkpoint is a directory ``step-NNNNNNNNN/`` holding safetensors (weights, Adam
state, dead-latent counters, history) and JSON (position in the data, both
configurations): nothing is pickled. It is written under a temporary name and renamed,
so a directory appears complete or not at all; the oldest beyond ``keep_checkpoints``
are deleted. Resuming with other configurations is refused (how often checkpoints are
written may change: it does not change the result).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mechscope.errors import InputError
from mechscope.sae.model import SparseAutoencoder
from mechscope.sae.train_config import TrainConfig

CHECKPOINT_FORMAT = "mechscope.sae.train/1"
HISTORY_FIELDS = ("loss", "mse", "l0", "dead_fraction", "lr")
"""What training records at every step (see :class:`mechscope.sae.train.TrainHistory`)."""
_NOT_RESULT_AFFECTING = ("checkpoint_every", "keep_checkpoints")


@dataclass
class TrainingState:
    """What a checkpoint must restore besides the weights and Adam."""

    step: int
    """Optimiser steps taken."""
    epoch: int
    """Pass over the data of the last batch read."""
    position: int
    """Index (within ``epoch``) of the next batch to read."""
    tokens_since_fired: Tensor
    """(d_sae,) tokens seen since each latent last fired."""
    history: dict[str, list[float]]
    """One list per :data:`HISTORY_FIELDS` entry."""


def latest_checkpoint(directory: Path) -> Path | None:
    if not directory.exists():
        return None
    if not directory.is_dir():
        raise InputError(f"checkpoint_dir {directory} is a file; give a directory (created if missing)")
    found = sorted(p for p in directory.glob("step-*") if p.is_dir() and p.name[5:].isdigit())
    return found[-1] if found else None


def save_checkpoint(directory: Path, sae: SparseAutoencoder, optimizer, state: TrainingState, config: TrainConfig) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{state.step:09d}"
    tmp = directory / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous() for k, v in sae.state_dict().items()}, tmp / "sae.safetensors")
    adam = {}
    for name, param in sae.named_parameters():
        for key, value in optimizer.state.get(param, {}).items():
            adam[f"{name}.{key}"] = value.detach().reshape(value.shape).contiguous()
    save_file(adam, tmp / "optimizer.safetensors")
    history = {f"history.{k}": torch.tensor(v, dtype=torch.float64) for k, v in state.history.items()}
    save_file({"tokens_since_fired": state.tokens_since_fired, **history}, tmp / "state.safetensors")
    meta = {"format": CHECKPOINT_FORMAT, "step": state.step, "epoch": state.epoch, "position": state.position,
            "train_config": _config_json(config), "sae_config": dataclasses.asdict(sae.cfg)}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)  # a directory appears complete or not at all
    for old in sorted(p for p in directory.glob("step-*") if p.is_dir())[: -config.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _config_json(config: TrainConfig) -> dict:
    return json.loads(json.dumps({k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_RESULT_AFFECTING}))


def load_checkpoint(path: Path, sae: SparseAutoencoder, optimizer, config: TrainConfig) -> TrainingState:
    meta = json.loads((path / "state.json").read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a mechscope training checkpoint (format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    _check_same("TrainConfig", meta["train_config"], _config_json(config), path)
    _check_same("SAEConfig", meta["sae_config"], json.loads(json.dumps(dataclasses.asdict(sae.cfg))), path)
    device = sae.W_dec.device
    sae.load_state_dict({k: v.to(device) for k, v in load_file(path / "sae.safetensors").items()})
    adam = load_file(path / "optimizer.safetensors")
    names = [name for name, _ in sae.named_parameters()]
    saved = optimizer.state_dict()
    saved["state"] = {
        i: {key.removeprefix(f"{name}."): value for key, value in adam.items() if key.rsplit(".", 1)[0] == name}
        for i, name in enumerate(names)
        if any(key.rsplit(".", 1)[0] == name for key in adam)
    }
    optimizer.load_state_dict(saved)
    tensors = load_file(path / "state.safetensors")
    history = {k: tensors[f"history.{k}"].tolist() for k in HISTORY_FIELDS}
    return TrainingState(step=meta["step"], epoch=meta["epoch"], position=meta["position"],
                     tokens_since_fired=tensors["tokens_since_fired"].to(device), history=history)


def _check_same(what: str, saved: dict, current: dict, path: Path) -> None:
    differ = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
    if differ:
        details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}" for k in differ)
        raise InputError(
            f"the checkpoint in {path.parent} was written with a different {what} ({details}); "
            "fix: resume with the same configuration, or give a new checkpoint_dir"
        )
