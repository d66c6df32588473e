"""The default results store: one SQLite file, with artifacts in a folder beside it.

::

    store = SQLiteStore.open("~/.local/share/mechscope/results.db")
    run = store.start_run(command="patch", model_name="smollm2-135m", model_hash=weights_hash(model), ...)
    store.put_stage(run.id, "patching", result, key=key, seconds=12.3)
    store.finish_run(run.id, status="complete", summary={"top": "L9H6"})
    store.lookup(key)                       # the same result, for an identical stage

**Safety.** WAL journal and a 60 s busy timeout: several processes can write at once
(each write is one short transaction, serialised by SQLite) and readers never block
writers. A stage is written in one transaction (its row and its artifact reference);
artifacts are written to a temporary file and renamed *before* the row that names them,
so a crash leaves at worst an unreferenced file, never a row without its file.

**Schema.** ``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS` brings an
older file up to date on open. A file of a newer version is refused with a message.

**Layout.** ``results.db`` and ``results.db.artifacts/ab/abcdef….ext``, files named by the
SHA-256 of their bytes (content-addressed: stored once however many runs use them).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from mechscope.store.base import STATUSES, Run, StageRecord, StoreError
from mechscope.store.codec import decode, encode

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, command TEXT NOT NULL, model_name TEXT NOT NULL, model_hash TEXT NOT NULL,
        task_name TEXT NOT NULL DEFAULT '', task_hash TEXT NOT NULL DEFAULT '', options TEXT NOT NULL,
        version TEXT NOT NULL, seeds TEXT NOT NULL, started REAL NOT NULL, ended REAL,
        status TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '{}', error TEXT NOT NULL DEFAULT '');
    CREATE TABLE stages (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,
        position INTEGER NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL,
        plain BLOB NOT NULL, tensors TEXT, seconds REAL NOT NULL, cached INTEGER NOT NULL, created REAL NOT NULL,
        PRIMARY KEY (run_id, name));
    CREATE INDEX stages_key ON stages(key);
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,
        digest TEXT NOT NULL, PRIMARY KEY (run_id, name));
    CREATE INDEX artifacts_digest ON artifacts(digest);
    CREATE INDEX runs_started ON runs(started);
    """,
)
"""Schema migrations: entry i takes a file from version i to i + 1."""


_DIGEST = re.compile(r"[0-9a-f]{64}(\.[a-z0-9]{1,10})?")


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":"), allow_nan=False).encode(), 3)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


class SQLiteStore:
    """A :class:`~mechscope.store.base.ResultsStore` in one SQLite file."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path, self._db = path, connection
        self.artifact_dir = path.with_name(path.name + ".artifacts")

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path) -> SQLiteStore:
        """Open (creating if needed) the store at ``path``; migrate an older schema."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise StoreError(f"the results store {path} is a directory; give a file path, e.g. {path / 'results.db'}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            _migrate(db, path)
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{path} is not a readable mechscope results database ({error}); move it away (a new one is "
                f"created) or pass --store with another path"
            ) from None
        return cls(path, db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so writers queue instead of deadlocking."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot write to the results store {self.path}: {error}") from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        try:
            cursor = self._db.execute(sql, args)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot read the results store {self.path}: {error}") from None
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    # --------------------------------------------------------------- runs
    def start_run(self, *, command: str, model_name: str, model_hash: str, task_name: str = "",
                  task_hash: str = "", options: dict | None = None, seeds: dict | None = None) -> Run:
        from mechscope import __version__

        now = time.time()
        run = Run(id=time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(3),
                  command=command, model_name=model_name, model_hash=model_hash, task_name=task_name,
                  task_hash=task_hash, options=dict(options or {}), version=__version__, seeds=dict(seeds or {}),
                  started=now)
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, command, model_name, model_hash, task_name, task_hash, options, version, "
                "seeds, started, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                (run.id, command, model_name, model_hash, task_name, task_hash,
                 json.dumps(run.options, sort_keys=True, default=str), run.version, json.dumps(run.seeds), now))
        return run

    def finish_run(self, run_id: str, *, status: str, summary: dict | None = None, error: str = "") -> Run:
        if status not in STATUSES or status == "running":
            raise ValueError(f"a run ends as one of {', '.join(STATUSES[1:])}; received {status!r}")
        with self._write() as db:
            db.execute("UPDATE runs SET status = ?, ended = ?, summary = ?, error = ? WHERE id = ?",
                       (status, time.time(), json.dumps(summary or {}, default=str), error, run_id))
        return self.run(run_id)

    def run(self, run_id: str) -> Run:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            close = [r["id"] for r in self._read("SELECT id FROM runs WHERE id LIKE ? ORDER BY id DESC LIMIT 5",
                                                 (f"%{run_id}%",))]
            hint = f" (did you mean {', '.join(close)}?)" if close else "; `mechscope runs list` shows the ids"
            raise StoreError(f"no run {run_id!r} in {self.path}{hint}")
        return _run(rows[0])

    def runs(self, *, command: str | None = None, model: str | None = None, task: str | None = None,
             since: float | None = None, limit: int | None = None) -> list[Run]:
        """Runs, newest first, filtered by command, model name, task name and start time."""
        where, args = [], []
        for column, value in (("command", command), ("model_name", model), ("task_name", task)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("started >= ?")
            args.append(since)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY started DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_run(row) for row in self._read(sql, tuple(args))]

    def delete_run(self, run_id: str) -> None:
        """Delete a run, its stages, and the artifacts no other run uses."""
        self.run(run_id)  # a clear error for an unknown id
        digests = {r["digest"] for r in self._read("SELECT digest FROM artifacts WHERE run_id = ?", (run_id,))}
        digests |= {r["tensors"] for r in self._read("SELECT tensors FROM stages WHERE run_id = ? AND tensors "
                                                      "IS NOT NULL", (run_id,))}
        with self._write() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        for digest in digests:
            used = self._read("SELECT 1 FROM artifacts WHERE digest = ? UNION SELECT 1 FROM stages WHERE tensors = ?",
                              (digest, digest))
            if not used:
                self.artifact_path(digest).unlink(missing_ok=True)

    # ------------------------------------------------------------- stages
    def put_stage(self, run_id: str, name: str, value: Any, *, key: str, seconds: float,
                  cached: bool = False) -> StageRecord:
        """Store ``value`` as stage ``name`` of the run (replacing a stage of that name)."""
        from mechscope.results import to_jsonable

        data, tensors = encode(value)
        digest = self._put_file(save_tensors(tensors)) if tensors else None
        plain = to_jsonable(value)
        kind = type(value).__name__
        with self._write() as db:
            position = db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM stages WHERE run_id = ?",
                                  (run_id,)).fetchone()[0]
            db.execute("INSERT OR REPLACE INTO stages (run_id, name, position, key, type, data, plain, tensors, "
                       "seconds, cached, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, name, position, key, kind, _pack(data), _pack(plain), digest, float(seconds),
                        int(cached), time.time()))
        return StageRecord(run_id=run_id, name=name, position=position, key=key, seconds=float(seconds),
                           cached=cached, type=kind)

    def lookup(self, key: str) -> tuple[Any, float] | None:
        """``(value, seconds)`` of a stored stage with this key (computed, not itself
        served from the store), or None."""
        rows = self._read("SELECT data, tensors, seconds FROM stages WHERE key = ? ORDER BY cached, created DESC "
                          "LIMIT 1", (key,))
        if not rows:
            return None
        return self._value(rows[0]), rows[0]["seconds"]

    def stages(self, run_id: str) -> list[StageRecord]:
        rows = self._read("SELECT run_id, name, position, key, seconds, cached, type FROM stages WHERE run_id = ? "
                          "ORDER BY position", (run_id,))
        return [StageRecord(**{**row, "cached": bool(row["cached"])}) for row in rows]

    def stage_value(self, run_id: str, name: str) -> Any:
        """A stage's value, decoded back into its classes and tensors."""
        return self._value(self._stage_row(run_id, name, "data, tensors"))

    def stage_plain(self, run_id: str, name: str) -> Any:
        """A stage's value as plain JSON (``Result.to_dict``): cheap, for pages and exports."""
        return _unpack(self._stage_row(run_id, name, "plain")["plain"])

    def _stage_row(self, run_id: str, name: str, columns: str) -> dict:
        rows = self._read(f"SELECT {columns} FROM stages WHERE run_id = ? AND name = ?", (run_id, name))
        if not rows:
            known = [s.name for s in self.stages(run_id)]
            raise StoreError(f"run {run_id} has no stage {name!r}; it has {', '.join(known) or 'none'}")
        return rows[0]

    def _value(self, row: dict) -> Any:
        tensors = load_tensors(self._read_file(row["tensors"])) if row["tensors"] else {}
        return decode(_unpack(row["data"]), tensors)

    # ---------------------------------------------------------- artifacts
    def put_artifact(self, run_id: str, name: str, data: bytes) -> str:
        """Attach ``data`` to the run as ``name`` (e.g. ``report.html``); returns its digest."""
        digest = self._put_file(data, suffix=Path(name).suffix)
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO artifacts (run_id, name, digest) VALUES (?, ?, ?)",
                       (run_id, name, digest))
        return digest

    def artifacts(self, run_id: str) -> dict[str, str]:
        """The run's artifacts: name → digest."""
        return {r["name"]: r["digest"] for r in self._read("SELECT name, digest FROM artifacts WHERE run_id = ? "
                                                            "ORDER BY name", (run_id,))}

    def artifact_path(self, digest: str) -> Path:
        """Where an artifact's bytes are. Digests are checked, so no name can lead out of the folder."""
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise StoreError(f"{digest!r} is not an artifact digest (64 hex digits and an optional extension)")
        return self.artifact_dir / digest[:2] / digest

    def _put_file(self, data: bytes, suffix: str = "") -> str:
        digest = sha256(data).hexdigest() + suffix.lower()
        path = self.artifact_dir / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return digest

    def _read_file(self, digest: str) -> bytes:
        path = self.artifact_path(digest)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"the store's artifact {path} is missing; recompute the run (--no-cache)") from None

    # ------------------------------------------------------------- export
    def export_run(self, run_id: str, out_dir: str | Path) -> Path:
        """Write the run (``run.json``: record and every stage as plain JSON) and its artifacts to ``out_dir``."""
        from mechscope.results import write_json

        run = self.run(run_id)
        out_dir = Path(out_dir)
        stages = {s.name: {"seconds": s.seconds, "cached": s.cached, "type": s.type,
                           "value": self.stage_plain(run_id, s.name)} for s in self.stages(run_id)}
        write_json(out_dir / "run.json", {"run": run.__dict__, "stages": stages})
        for name, digest in self.artifacts(run_id).items():
            target = out_dir / Path(name).name
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(self._read_file(digest))
            os.replace(tmp, target)
        return out_dir


def _run(row: dict) -> Run:
    return Run(id=row["id"], command=row["command"], model_name=row["model_name"], model_hash=row["model_hash"],
               task_name=row["task_name"], task_hash=row["task_hash"], options=json.loads(row["options"]),
               version=row["version"], seeds=json.loads(row["seeds"]), started=row["started"], ended=row["ended"],
               status=row["status"], summary=json.loads(row["summary"]), error=row["error"])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(f"{path} was written by a newer mechscope (schema {version}, this one knows "
                         f"{len(MIGRATIONS)}); upgrade mechscope or pass --store with another path")
    while version < len(MIGRATIONS):
        db.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated while this one waited for the lock
            target = db.execute("PRAGMA user_version").fetchone()[0]
            if target >= len(MIGRATIONS):
                db.execute("COMMIT")
                return
            # executescript would commit on its own; run the statements one by one inside the transaction
            for statement in filter(str.strip, MIGRATIONS[target].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        version = target + 1
