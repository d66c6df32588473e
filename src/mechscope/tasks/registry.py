"""Tasks by name: the built-in generators, or a path to your own JSONL/CSV file.

::

    make_task("ioi", model, n=64, seed=1)
    make_task("greater-than", model)
    make_task("my_pairs.jsonl", model, align="end")
    resolve_task("ioi", model, n=16, metric="normalized")   # what every command means by --task
    check_task("my_pairs.jsonl", n=16)                     # the same refusals, before a model loads
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from mechscope.errors import InputError, closest
from mechscope.tasks.factual import factual
from mechscope.tasks.greater_than import greater_than
from mechscope.tasks.induction import induction
from mechscope.tasks.io import load_task
from mechscope.tasks.ioi import ioi
from mechscope.tasks.sva import sva
from mechscope.tasks.task import METRICS, Task

TASKS: dict[str, Callable[..., Task]] = {
    "ioi": ioi,
    "greater-than": greater_than,
    "factual": factual,
    "induction": induction,
    "sva": sva,
}
"""The built-in task generators, by name."""

_FILE_SUFFIXES = (".jsonl", ".csv")


def make_task(name: str, model, **options) -> Task:
    """The task ``name`` (a key of :data:`TASKS`, or a ``.jsonl``/``.csv`` path) on ``model``."""
    if not isinstance(name, str):
        raise InputError(f"a task is a name or a file path; received {type(name).__name__}")
    if name in TASKS:
        _check_options(TASKS[name], options, name)
        return TASKS[name](model, **options)
    if name.lower().endswith(_FILE_SUFFIXES) or Path(name).is_file():
        _check_options(load_task, options, name)
        return load_task(model, name, **options)
    raise _unknown(name)


def _unknown(name: str) -> InputError:
    """The error for a task name that is neither built in nor a task file."""
    hint = closest(name, TASKS)
    return InputError(
        f"unknown task {name!r}; known names: {', '.join(TASKS)}"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + ", or give a path to a .jsonl or .csv file of clean, corrupt, answer, wrong"
    )


def _check_options(build: Callable, options: dict, name: str) -> None:
    """Refuse options the task does not take, listing those it does."""
    accepted = [p.name for p in inspect.signature(build).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"task {name!r} takes the options {', '.join(accepted)}; received {', '.join(unknown)}")


def check_task(name: str, *, n: int | None = None, seed: int | None = None, metric: str | None = None) -> None:
    """Refuse, without a model, what :func:`resolve_task` would refuse about its arguments
    (an unknown name, a task file that does not exist, ``n`` or ``seed`` for a file, an
    unknown metric), so that a command can check them before it loads anything."""
    if metric is not None and metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if name in TASKS:
        return
    if not isinstance(name, str):
        raise InputError(f"a task is a name or a file path; received {type(name).__name__}")
    if not name.lower().endswith(_FILE_SUFFIXES) and not Path(name).is_file():
        raise _unknown(name)
    if not Path(name).is_file():
        raise InputError(f"task file {name} does not exist; give a .jsonl or .csv file of clean, corrupt, answer, "
                         f"wrong (see examples/pairs.jsonl) or a built-in task: {', '.join(TASKS)}")
    if n is not None or seed is not None:
        given = ", ".join(flag for flag, value in (("-n", n), ("--seed", seed)) if value is not None)
        raise InputError(f"{given} applies to built-in tasks; the task file {name} brings its own prompts "
                         f"(drop {given}, or edit the file)")


def resolve_task(name: str, model, *, n: int | None = None, seed: int | None = None,
                 metric: str | None = None) -> Task:
    """The task every command means by ``name``: a built-in generator with ``n`` prompts
    (default 32) and ``seed`` (default 0), or a ``.jsonl``/``.csv`` file, which brings its
    own prompts (``n`` and ``seed`` are refused for it).

    **The metric rule**, the same for every command: the task's own metric (``logit_diff``
    for the built-in tasks; a file's ``metric`` column, else ``logit_diff``), unless
    ``metric`` names another."""
    check_task(name, n=n, seed=seed, metric=metric)
    if name in TASKS:
        task = make_task(name, model, n=32 if n is None else n, seed=0 if seed is None else seed)
    else:
        task = make_task(name, model)
    return task if metric is None else task.with_metric(metric)
