"""The results store as the app reads it: one connection per thread, finished runs' views cached.

::

    access = StoreAccess("results.db")
    runs = access.store().runs(limit=50)
    view = access.cached(run, "investigation", lambda: build(access.store(), run.id))

SQLite connections are not shared between threads here: each thread of the server's pool
opens its own (WAL mode lets them read while a command writes). A finished run never
changes, so what a page computes from it is kept (a few dozen entries, least recently used
dropped) under the run's id and end time; a running run is recomputed on every request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mechscope.store import open_store
from mechscope.store.base import Run

T = TypeVar("T")


class StoreAccess:
    """Per-thread connections to one store, and a cache of views of finished runs."""

    def __init__(self, path: str | Path, *, cache_size: int = 64) -> None:
        self.path = Path(path).expanduser()
        self._local = threading.local()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._connections: list = []
        open_store(self.path).close()  # create or migrate it now, and fail at start-up if unreadable

    def store(self):
        """This thread's connection to the store."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.path)
            with self._lock:
                self._connections.append(store)
        return store

    def cached(self, run: Run, what: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept for a finished run under (run id, end time, ``what``)."""
        if run.status == "running" or run.ended is None:
            return compute()
        key = (run.id, run.ended, what)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def forget(self, run_id: str) -> None:
        """Drop everything cached about a run (after deleting it)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == run_id]:
                del self._cache[key]

    def close(self) -> None:
        with self._lock:
            for store in self._connections:
                try:
                    store.close()
                except Exception:  # pragma: no cover - closing at shutdown, from another thread
                    pass
            self._connections.clear()
