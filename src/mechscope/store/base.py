"""What the results store keeps, and the interface every backend implements.

A **run** is one command on one model (and usually one task): ``investigate``, ``patch``,
``circuit``… It records who ran what: the model's name and weights hash, the task's name
and hash, the options, mechscope's version and the seeds, when it started and ended, and
how it ended. A run has **stages**: named results (a :class:`~mechscope.results.Result`,
or any value the codec stores), each with its wall time and the **key** that decides
whether it can be reused: a hash of the stage's name, model hash, task hash, options and
mechscope's version. **Artifacts** are files (figures, reports, tensors), stored once by
content and attached to runs by name.

SQLite is the default backend (:mod:`~mechscope.store.sqlite`); a server database for a
lab would implement :class:`ResultsStore` in the same shape.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mechscope.errors import MechscopeError

STATUSES = ("running", "complete", "failed", "interrupted", "refused")
"""How a run ended (``running`` until it does). ``refused``: the input did not allow the
job, e.g. a model that does not do the task."""


class StoreError(MechscopeError):
    """The results store cannot be opened or read: damaged, newer, or not a store."""


@dataclass(frozen=True, kw_only=True)
class Run:
    """One command's record in the store."""

    id: str
    """Sortable unique id, e.g. ``20261205-142233-3f9a``."""
    command: str
    """The command that made it (``investigate``, ``patch``, ``circuit``, ``lens``…)."""
    model_name: str
    """How the model was named when loaded."""
    model_hash: str
    """:func:`mechscope.models.identity.weights_hash` of its weights."""
    task_name: str = ""
    """The task's name, or "" for commands without one."""
    task_hash: str = ""
    """:func:`task_hash` of the task's prompts, answers and metric, or ""."""
    options: dict[str, Any] = field(default_factory=dict)
    """Every option that can change the result."""
    version: str = ""
    """mechscope's version."""
    seeds: dict[str, int] = field(default_factory=dict)
    """The seeds used, by what they seeded."""
    started: float = 0.0
    """Start time (seconds since the epoch)."""
    ended: float | None = None
    """End time, or None while running."""
    status: str = "running"
    """One of :data:`STATUSES`."""
    summary: dict[str, Any] = field(default_factory=dict)
    """A few headline numbers and sentences, for lists and comparisons."""
    error: str = ""
    """Why it failed, was refused or interrupted."""


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """One stage of a run, as stored (its value is read separately: it can be large)."""

    run_id: str
    name: str
    """The stage's name, unique within the run (``behaviour``, ``where.patching``…)."""
    position: int
    """Order within the run."""
    key: str
    """Reuse key: equal keys mean the same computation (see :func:`stage_key`)."""
    seconds: float
    """Wall time it took when computed (not when served from the store)."""
    cached: bool
    """True if this run took it from an earlier run instead of computing it."""
    type: str
    """The stored value's class name."""


class ResultsStore(Protocol):
    """The interface every backend implements (SQLite today)."""

    path: Path

    def start_run(self, *, command: str, model_name: str, model_hash: str, task_name: str = "",
                  task_hash: str = "", options: dict | None = None, seeds: dict | None = None) -> Run: ...

    def finish_run(self, run_id: str, *, status: str, summary: dict | None = None, error: str = "") -> Run: ...

    def put_stage(self, run_id: str, name: str, value: Any, *, key: str, seconds: float,
                  cached: bool = False) -> StageRecord: ...

    def lookup(self, key: str) -> Any | None: ...

    def stage_value(self, run_id: str, name: str) -> Any: ...

    def stage_plain(self, run_id: str, name: str) -> Any: ...

    def stages(self, run_id: str) -> list[StageRecord]: ...

    def run(self, run_id: str) -> Run: ...

    def runs(self, *, command: str | None = None, model: str | None = None, task: str | None = None,
             since: float | None = None, limit: int | None = None) -> list[Run]: ...

    def delete_run(self, run_id: str) -> None: ...

    def put_artifact(self, run_id: str, name: str, data: bytes) -> str: ...

    def artifacts(self, run_id: str) -> dict[str, str]: ...

    def artifact_path(self, digest: str) -> Path: ...

    def close(self) -> None: ...


def stage_key(stage: str, *, model_hash: str, task_hash: str = "", options: dict | None = None,
              version: str) -> str:
    """The reuse key of a stage: same stage, weights, task, options and version → same key."""
    payload = json.dumps({"stage": stage, "model": model_hash, "task": task_hash, "options": options or {},
                          "version": version}, sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def task_hash(task) -> str:
    """A hash of a task's name, metric, tokens, padding, answers and wrong tokens."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{task.name}|{task.metric}|".encode())
    for tensor in (task.clean.ids, task.clean.attention_mask, task.corrupt.ids, task.corrupt.attention_mask,
                   task.answers, task.wrong):
        digest.update(repr(tuple(tensor.shape)).encode())
        digest.update(memoryview(tensor.detach().cpu().contiguous().numpy()))
    return digest.hexdigest()

