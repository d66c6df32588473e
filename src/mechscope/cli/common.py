"""Shared pieces of the CLI commands: one-line errors, consoles, the options every
command declares the same way, writing outputs, recording runs in the results store.

A command module defines ``register(app)`` and decorates its commands with
``@clean_errors`` so that any :class:`MechscopeError` becomes ``error: …`` on stderr
and exit status 2, never a traceback. Nothing here imports torch: ``mechscope --help``
must answer at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from mechscope.errors import InputError, MechscopeError

out = Console()
err = Console(stderr=True)

DEFAULT_OUT = Path("mechscope-out")
"""Where commands write their JSON and figures unless ``--out`` says otherwise."""

# ------------------------------------------------------------------ shared options
MODEL_HELP = "Bundled name (smollm2-135m, gemma3-270m), local Hugging Face directory, .gguf file or hub id (org/name)."
TASK_HELP = ("Built-in task (ioi, greater-than, factual, induction, sva) or a .jsonl/.csv file with the fields "
             "clean, corrupt, answer, wrong (optional: metric, align); see examples/pairs.jsonl.")
METRIC_HELP = ("logit_diff, prob_diff, kl or normalized. Default, for every command: the task's own "
               "(logit_diff for built-in tasks; a file's metric field, else logit_diff).")
N_HELP = "Prompt pairs of a built-in task (default 32; a task file brings its own)."
SEED_HELP = "Seed of a built-in task's prompts (default 0)."


def model_argument():
    """The MODEL argument every command takes first."""
    return typer.Argument(..., help=MODEL_HELP, show_default=False)


def task_option(default: str = "ioi"):
    return typer.Option(default, "--task", "-t", help=TASK_HELP)


def metric_option():
    return typer.Option(None, "--metric", help=METRIC_HELP, show_default=False)


def n_option():
    return typer.Option(None, "-n", help=N_HELP, show_default=False)


def seed_option():
    return typer.Option(None, "--seed", help=SEED_HELP, show_default=False)


def store_option():
    return typer.Option(None, "--store", help="Results database (default $MECHSCOPE_STORE or "
                        "~/.local/share/mechscope/results.db).", show_default=False)


def no_store_option():
    return typer.Option(False, "--no-store", help="Do not record this run in the results store.")


def no_cache_option():
    return typer.Option(False, "--no-cache", help="Recompute even what the results store already holds.")


@contextmanager
def recorded(store: Path | None, no_store: bool, *, command: str, model, task=None, options: dict | None = None,
             no_cache: bool = False) -> Iterator:
    """Run the block inside :func:`mechscope.store.recorder.recording`, in the store the
    options name (none with ``--no-store``), and say where the run was recorded."""
    from mechscope.store import open_store
    from mechscope.store.recorder import recording

    opened = None if no_store else open_store(store)
    try:
        with recording(opened, command=command, model=model, task=task, options=options,
                       use_cache=not no_cache) as recorder:
            yield recorder
        if opened is not None:
            cached = f" ({len(recorder.cached)} stage(s) served from the store)" if recorder.cached else ""
            out.print(f"recorded as run {recorder.run.id} in {escape(str(opened.path))}{cached}", soft_wrap=True)
    finally:
        if opened is not None:
            opened.close()


def clean_errors(command: Callable) -> Callable:
    """Turn mechscope's errors into one line on stderr and exit status 2."""

    @wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MechscopeError as error:
            err.print(f"[bold red]error[/]: {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(2) from None

    return run


def write_outputs(result, figure, out_dir: Path, stem: str) -> list[Path]:
    """Save ``result`` as ``out_dir/stem.json`` and ``figure`` (if any) as ``stem.png``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory (it is created if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [result.save(out_dir / f"{stem}.json")]
    if figure is not None:
        png = out_dir / f"{stem}.png"
        figure.savefig(png, dpi=110)
        paths.append(png)
    for path in paths:
        out.print(f"wrote {escape(str(path))}", soft_wrap=True)
    return paths


def safe_stem(text: str) -> str:
    """A file-name-safe version of a model name or path."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in Path(text).name or text)
