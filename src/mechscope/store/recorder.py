"""Recording a command's run: each stage computed once, timed, stored, and reused.

::

    with recording(store, command="patch", model=model, task=task, options=options) as run:
        result = run.stage("patching", lambda: activation_patching(model, task, what="heads"))
        run.summary["top"] = result.top(1)

Inside the block, :meth:`Recorder.stage` looks the stage up by its key (stage name, the
model's weights hash, the task's hash, the options, mechscope's version); a stored value
is returned as it was, a new one is computed, timed and stored. On leaving, the run is
marked ``complete``, or ``interrupted`` (Ctrl-C: the stages finished so far stay, and a
rerun reuses them), ``refused`` (:class:`RunRefused`: the input does not allow the job)
or ``failed``; the exception goes on. With ``store=None`` nothing is stored and every
stage is computed: the same code path for ``--no-store``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mechscope.errors import MechscopeError
from mechscope.store.base import ResultsStore, Run, stage_key, task_hash

T = TypeVar("T")


class RunRefused(MechscopeError):
    """The job cannot be done on this input (e.g. the model does not do the task): the run
    is stored as ``refused`` with this message, and nothing is claimed."""


@dataclass
class Recorder:
    """The handle a recorded block works through (see the module docstring)."""

    store: ResultsStore | None
    run: Run | None
    model_hash: str
    task_hash: str
    options: dict[str, Any]
    use_cache: bool = True
    """False recomputes every stage (``--no-cache``), still storing the new results."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Headline numbers stored with the run when it ends."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage (as first computed, for stages served from the store)."""
    cached: set[str] = field(default_factory=set)
    """Stages served from the store in this run."""
    refusal: str = ""
    """Set when the job found its input unfit and ended early without an error: the run is
    then stored as ``refused`` with this reason (raising :class:`RunRefused` does the same)."""

    def key(self, name: str, options: dict | None = None) -> str:
        from mechscope import __version__

        return stage_key(name, model_hash=self.model_hash, task_hash=self.task_hash,
                         options={**self.options, **(options or {})}, version=__version__)

    def stage(self, name: str, compute: Callable[[], T], *, options: dict | None = None) -> T:
        """The value of stage ``name``: stored, or computed now (``options`` adds to the
        run's options in the key, for what only this stage depends on)."""
        key = self.key(name, options)
        if self.store is not None and self.use_cache:
            hit = self.store.lookup(key)
            if hit is not None:
                value, seconds = hit
                self.store.put_stage(self.run.id, name, value, key=key, seconds=seconds, cached=True)
                self.seconds[name] = seconds
                self.cached.add(name)
                return value
        start = time.perf_counter()
        value = compute()
        self.seconds[name] = time.perf_counter() - start
        if self.store is not None:
            self.store.put_stage(self.run.id, name, value, key=key, seconds=self.seconds[name])
        return value

    def attach(self, name: str, data: bytes) -> None:
        """Keep a file (a figure, a report) with the run."""
        if self.store is not None:
            self.store.put_artifact(self.run.id, name, data)


@contextmanager
def recording(store: ResultsStore | None, *, command: str, model, task=None, options: dict | None = None,
              seeds: dict | None = None, use_cache: bool = True) -> Iterator[Recorder]:
    """Record a run of ``command`` on ``model`` (and ``task``) in ``store`` (None: don't)."""
    from mechscope.models.identity import weights_hash

    options = dict(options or {})
    model_hash = weights_hash(model)
    t_hash = task_hash(task) if task is not None else ""
    run = None
    if store is not None:
        run = store.start_run(command=command, model_name=model.name, model_hash=model_hash,
                              task_name=getattr(task, "name", ""), task_hash=t_hash, options=options, seeds=seeds)
    recorder = Recorder(store, run, model_hash, t_hash, options, use_cache=use_cache)
    try:
        yield recorder
    except KeyboardInterrupt:
        _finish(recorder, "interrupted", "interrupted (Ctrl-C); rerun the same command to continue from the "
                                         "stages already stored")
        raise
    except RunRefused as error:
        _finish(recorder, "refused", str(error))
        raise
    except BaseException as error:
        _finish(recorder, "failed", f"{type(error).__name__}: {error}"[:4000])
        raise
    _finish(recorder, "refused" if recorder.refusal else "complete", recorder.refusal)


def _finish(recorder: Recorder, status: str, error: str) -> None:
    if recorder.store is not None:
        summary = {**recorder.summary, "stage_seconds": recorder.seconds, "cached_stages": sorted(recorder.cached)}
        recorder.store.finish_run(recorder.run.id, status=status, summary=summary, error=error)
