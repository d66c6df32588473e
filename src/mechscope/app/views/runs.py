"""Runs as the pages show them: rows for the list, a record with its stages and files.

Every command's runs are shown the same way (record, options, headline numbers, stages
with their plain JSON, files); investigations also get the richer views of
:mod:`~.investigation`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from mechscope.store.base import Run

RICH_COMMANDS = {"investigate": "investigation"}
"""Commands whose runs have a page of their own beyond the generic one."""


def run_row(run: Run) -> dict[str, Any]:
    """One run as a row of the Runs page."""
    return {
        "id": run.id, "command": run.command, "model": run.model_name, "task": run.task_name, "status": run.status,
        "started": run.started, "started_text": _when(run.started),
        "seconds": None if run.ended is None else round(run.ended - run.started, 1),
        "summary": _finite(run.summary), "error": run.error, "kind": RICH_COMMANDS.get(run.command, "generic"),
    }


def list_runs(store, *, command: str | None = None, model: str | None = None, task: str | None = None,
              since: float | None = None, limit: int = 500) -> dict[str, Any]:
    """The Runs page's data: filtered rows, and every value each filter can take."""
    everything = store.runs()
    facets = {"command": sorted({r.command for r in everything}), "model": sorted({r.model_name for r in everything}),
              "task": sorted({r.task_name for r in everything if r.task_name})}
    rows = store.runs(command=command or None, model=model or None, task=task or None, since=since, limit=limit)
    return {"runs": [run_row(r) for r in rows], "facets": facets, "total": len(everything)}


def run_detail(store, run_id: str) -> dict[str, Any]:
    """A run's record, its stages (without their values) and its files."""
    run = store.run(run_id)
    stages = [{"name": s.name, "type": s.type, "seconds": round(s.seconds, 3), "cached": s.cached}
              for s in store.stages(run_id)]
    artifacts = [{"name": name, "url": f"/runs/{run_id}/artifacts/{name}"} for name in store.artifacts(run_id)]
    return {**run_row(run), "model_hash": run.model_hash, "task_hash": run.task_hash, "options": _finite(run.options),
            "version": run.version, "seeds": run.seeds, "ended": run.ended, "stages": stages, "artifacts": artifacts}


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become their names (as the store's plain JSON has them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
