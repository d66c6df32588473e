"""The results store: every run of every command, its stages' results, and its files.

::

    from mechscope.store import open_store

    with open_store() as store:                     # $MECHSCOPE_STORE, or ~/.local/share/mechscope/results.db
        for run in store.runs(command="investigate"):
            print(run.id, run.model_name, run.task_name, run.status, run.summary)
        result = store.stage_value(run.id, "circuit")   # the stored Result, as it was

Identical stages (same model weights, task, options, mechscope version) are computed once:
:func:`~mechscope.store.base.stage_key` names them and ``store.lookup(key)`` returns them.
:mod:`~.base` holds the records and the interface, :mod:`~.sqlite` the default backend,
:mod:`~.codec` the exact, pickle-free encoding of results, :mod:`~.recorder` the
context manager commands run inside.
"""

from __future__ import annotations

import os
from pathlib import Path

from mechscope.store.base import STATUSES, ResultsStore, Run, StageRecord, StoreError, stage_key, task_hash
from mechscope.store.sqlite import SQLiteStore


def default_store_path() -> Path:
    """``$MECHSCOPE_STORE``, else ``$XDG_DATA_HOME/mechscope/results.db``, else
    ``~/.local/share/mechscope/results.db``."""
    if os.environ.get("MECHSCOPE_STORE"):
        return Path(os.environ["MECHSCOPE_STORE"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME")
    return (Path(data).expanduser() if data else Path.home() / ".local" / "share") / "mechscope" / "results.db"


def open_store(path: str | Path | None = None) -> ResultsStore:
    """The results store at ``path`` (default: :func:`default_store_path`)."""
    return SQLiteStore.open(default_store_path() if path is None else path)


__all__ = ["STATUSES", "ResultsStore", "Run", "SQLiteStore", "StageRecord", "StoreError", "default_store_path",
           "open_store", "stage_key", "task_hash"]
