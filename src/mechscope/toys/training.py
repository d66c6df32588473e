"""Resumable, seeded training for the toy models: one cached directory per configuration.

Every toy trains through :func:`resumable_training`: it takes a step function (one
optimiser step, batch ``i`` drawn from a seed derived from ``i``) and an evaluation
function, shows a progress bar, and writes a checkpoint every ``checkpoint_every`` steps
(weights, optimiser state, history; safetensors + JSON, nothing pickled). Killed and
started again with the same configuration, it resumes where the last checkpoint stopped
and ends with the same weights as an uninterrupted run; once finished, later calls load
the final checkpoint and train nothing::

    directory = run_dir("grokking", config)    # ~/.cache/mechscope/toys/grokking-3f2a9c01d4e5
    state = resumable_training(model=m, optimizer=opt, config=config, steps=config.steps,
                               step_fn=one_step, eval_fn=evaluate, eval_every=100,
                               directory=directory, checkpoint_every=1000, desc="grokking")
    state.history["train_loss"], state.history["eval_step"]

``snapshot_every`` also keeps the model's weights every so many steps (for analyses over
training, such as grokking's progress measures), in ``snapshots/step-NNNNNNNNN.safetensors``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save, save_file
from tqdm.auto import tqdm

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.models.cache import cache_root
from mechscope.results import Result, write_bytes_atomic
from mechscope.sae.checkpoint import latest_checkpoint

CHECKPOINT_FORMAT = "mechscope.toys/1"
NOT_RESULT_AFFECTING = ("threads", "checkpoint_every")
"""Config fields that change how a run goes, not what it ends with: left out of its identity."""
EXTENDABLE = "steps"
"""A config that lists this in its ``EXTENDABLE`` class attribute (its schedule does not depend
on the total) leaves it out of its identity too: asking for more steps resumes the cached run
and trains on, and the weights after any step are those of a run asked for that many."""
_KEEP = 2
"""Checkpoints kept (the newest); an older one survives a crash while the newest is written."""


@dataclass
class ToyState:
    """Where a training run stands."""

    step: int
    """Optimiser steps taken."""
    history: dict[str, list[float]]
    """Per-step metrics (one entry per step) and evaluation metrics (one per ``eval_step`` entry)."""
    directory: Path | None
    """The run's checkpoint directory (None: not checkpointed)."""
    resumed_from: int | None = None
    """Step of the checkpoint this run started from (None: from scratch)."""


def config_json(config) -> dict:
    """The fields of a config dataclass that decide the result, as JSON-able values (see :data:`EXTENDABLE`)."""
    left_out = (*NOT_RESULT_AFFECTING, *getattr(config, "EXTENDABLE", ()))
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in left_out}
    return json.loads(json.dumps(fields, sort_keys=True))


def run_dir(kind: str, config, root: str | Path | None = None) -> Path:
    """``<root or cache_root()>/toys/<kind>-<hash of the config>``: one directory per configuration."""
    digest = hashlib.sha256(json.dumps(config_json(config), sort_keys=True).encode()).hexdigest()[:12]
    return (Path(root) if root is not None else cache_root() / "toys") / f"{kind}-{digest}"


def checkpoint_directory(kind: str, config, checkpoint_dir: str | Path | None) -> Path | None:
    """Where a ``train_*`` function keeps its run: ``"cache"`` → :func:`run_dir`; a path → it; None → nowhere."""
    if checkpoint_dir == "cache":
        return run_dir(kind, config)
    return Path(checkpoint_dir) if checkpoint_dir is not None else None


@dataclass(frozen=True)
class TrainedToy(Result):
    """A trained toy model and how its training went (each toy subclasses it)."""

    model: HookedModel
    """The trained model (eval mode)."""
    history: dict[str, list[float]]
    """Per-step metrics, and per-evaluation metrics with ``eval_step`` (steps taken); see the subclass."""
    config: Any
    """The configuration trained."""
    directory: Path | None
    """Its checkpoints (None: not kept)."""
    resumed_from: int | None
    """The step training resumed from (None: from scratch; the last step: loaded from the cache)."""

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["model"] = repr(self.model)
        return out


# ----------------------------------------------------------------- checkpoints
def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: ToyState, config) -> Path:
    """Write ``directory/step-NNNNNNNNN/`` atomically (temporary name, then rename); keep the newest two."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{state.step:09d}"
    tmp = directory / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    opt = optimizer.state_dict()
    tensors = {f"{index}.{key}": torch.as_tensor(value).detach().contiguous()
               for index, slots in opt["state"].items() for key, value in slots.items()}
    save_file(tensors, tmp / "optimizer.safetensors")
    meta = {"format": CHECKPOINT_FORMAT, "step": state.step, "config": config_json(config),
            "param_groups": opt["param_groups"], "history": state.history}
    (tmp / "state.json").write_text(json.dumps(meta) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(p for p in directory.glob("step-*") if p.is_dir())[:-_KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, config) -> ToyState:
    """Restore weights (and optimiser state) from ``path``; the config must be the one it was written with."""
    meta = json.loads((path / "state.json").read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a mechscope toy checkpoint (format {meta.get('format')!r}, "
                         f"expected {CHECKPOINT_FORMAT!r}); fix: give another checkpoint directory")
    current = config_json(config)
    differ = sorted(k for k in meta["config"].keys() | current.keys() if meta["config"].get(k) != current.get(k))
    if differ:
        details = ", ".join(f"{k}: checkpoint {meta['config'].get(k)!r} vs now {current.get(k)!r}" for k in differ)
        raise InputError(f"the checkpoint in {path.parent} was written with another configuration ({details}); "
                         "fix: resume with the same configuration, or give a new checkpoint directory")
    model.load_state_dict(load_file(path / "model.safetensors"))
    if optimizer is not None:
        slots: dict[int, dict] = {}
        for key, value in load_file(path / "optimizer.safetensors").items():
            index, name = key.split(".", 1)
            slots.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    return ToyState(step=meta["step"], history=meta["history"], directory=path.parent, resumed_from=meta["step"])


def save_snapshot(directory: Path, step: int, model: torch.nn.Module) -> Path:
    """Keep the weights at ``step`` in ``directory/snapshots/`` (written atomically)."""
    folder = directory / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:09d}.safetensors"
    return write_bytes_atomic(path, save({k: v.detach().contiguous() for k, v in model.state_dict().items()}))


def snapshots(directory: Path) -> list[tuple[int, Path]]:
    """(step, file) of every kept snapshot, in order of step."""
    folder = directory / "snapshots"
    found = sorted(folder.glob("step-*.safetensors")) if folder.is_dir() else []
    return [(int(p.name[5:14]), p) for p in found]


# ----------------------------------------------------------------- the loop
def resumable_training(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config,
    steps: int,
    step_fn: Callable[[int], dict[str, float]],
    eval_fn: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 100,
    directory: Path | None = None,
    checkpoint_every: int = 1000,
    snapshot_every: int | None = None,
    desc: str = "train",
    progress: bool = True,
) -> ToyState:
    """Run ``step_fn(step)`` for steps ``0 .. steps-1``, resuming from ``directory``'s newest checkpoint.

    ``step_fn`` takes one optimiser step and returns that step's metrics (the same keys
    every step); ``eval_fn(step)`` runs after steps ``eval_every - 1``, ``2 * eval_every - 1``,
    ... and the last, and its metrics are recorded with ``eval_step`` (the steps taken).
    The model is left in eval mode.
    """
    state = ToyState(step=0, history={}, directory=directory)
    latest = latest_checkpoint(directory) if directory is not None else None
    if latest is not None:
        state = load_checkpoint(latest, model, optimizer, config)
        if state.step > steps:
            raise InputError(f"{directory} holds a run of {state.step} steps, more than the {steps} asked for; "
                             f"fix: ask for steps >= {state.step}, or give another checkpoint directory")
    if directory is not None and snapshot_every and state.step == 0:
        save_snapshot(directory, 0, model)
    bar = tqdm(range(state.step, steps), initial=state.step, total=steps, desc=desc, unit="step",
               disable=not progress, dynamic_ncols=True)
    model.train()
    try:
        for step in bar:
            _record(state.history, step_fn(step))
            state.step = step + 1
            if eval_fn is not None and (state.step % eval_every == 0 or state.step == steps):
                model.eval()
                with torch.no_grad():
                    _record(state.history, {"eval_step": float(state.step), **eval_fn(step)})
                model.train()
                bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in state.history.items() if k != "eval_step"},
                                refresh=False)
            if directory is not None and snapshot_every and state.step % snapshot_every == 0:
                save_snapshot(directory, state.step, model)
            if directory is not None and (state.step % checkpoint_every == 0 or state.step == steps):
                save_checkpoint(directory, model, optimizer, state, config)
    finally:
        bar.close()
        model.eval()
    return state


def _record(history: dict[str, list[float]], metrics: dict[str, float]) -> None:
    for key, value in metrics.items():
        history.setdefault(key, []).append(float(value))


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block on ``threads`` intra-op threads (None: this process's CPU cores), then restore."""
    before = torch.get_num_threads()
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(min(threads or available, available))
    try:
        yield
    finally:
        torch.set_num_threads(before)
