"""Shared pieces of the CLI commands: one-line errors, consoles, the options every
command declares the same way, writing outputs, recording runs in the results store.

A command module defines ``register(app)`` and decorates its commands with
``@clean_errors`` so that any :class:`MechscopeError` becomes ``error: …`` on stderr
and exit status 2, never a traceback. Nothing here imports torch: ``mechscope --help``
must answer at once.
"""

from __future__ import annotations

import hashlib
import json
import os
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
TASK_HELP = ("Built-in task (ioi, greater-than, factual, induction, sva) or a .jsonl/.csv file of prompt pairs, one "
             "per line: clean (prompt), corrupt (same length in tokens), answer (the next token clean should get, "
             "with its leading space), wrong (the token it is compared with); optional metric and align (\"end\": "
             "line up prompts of different lengths at their last token). Example: examples/pairs.jsonl.")
METRIC_HELP = ("logit_diff, prob_diff, kl or normalized. Default, for every command: the task's own "
               "(logit_diff for built-in tasks; a file's metric field, else logit_diff).")
N_HELP = "Prompt pairs of a built-in task (default 32; a task file brings its own)."
SEED_HELP = "Seed of a built-in task's prompts (default 0)."


def model_argument(extra: str = ""):
    """The MODEL argument every command takes first (``extra`` is added to the help)."""
    return typer.Argument(..., help=f"{MODEL_HELP} {extra}".strip(), show_default=False)


def out_option(what: str = "the JSON and PNG"):
    return typer.Option(DEFAULT_OUT, "--out", "-o", help=f"Directory for {what} (created if missing).")


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


def resume_option():
    return typer.Option(False, "--resume", help="Continue an interrupted run (Ctrl-C) from the parts the results store "
                        "kept; refuse to start over if it kept none. (An identical rerun takes them anyway.)")


def yes_option():
    return typer.Option(False, "--yes", "-y", help="Run even when the cost estimate is above the threshold.")


# ------------------------------------------------------------------ checks before any work
def check_out_dir(path: Path, option: str = "--out") -> None:
    """Refuse, before anything is loaded, an output directory that cannot be written:
    a file, under a file, or in a directory without write permission."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file; give a directory (it is created if missing)")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} {path} cannot be created: {existing} is a file; give another directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: {existing} is not writable; give a directory you can write to")


def check_store(store: Path | None, *, no_store: bool, no_cache: bool = False, resume: bool = False) -> None:
    """Refuse store options that contradict each other, or a --store that cannot be a file."""
    if resume and no_store:
        raise InputError("--resume continues from the parts the results store kept; it cannot go with --no-store")
    if resume and no_cache:
        raise InputError("--resume takes the parts the results store kept, --no-cache recomputes them: give one")
    if store is not None and not no_store:
        if store.is_dir():
            raise InputError(f"--store {store} is a directory; give a file path, e.g. {store / 'results.db'}")
        check_out_dir(store.parent, "--store's directory")


def check_at_least(*checks: tuple[str, int | float | None, int | float]) -> None:
    """``check_at_least(("-n", n, 1), ("--top", top, 1))``: each given value (None: not
    given) must be at least its minimum."""
    for option, value, least in checks:
        if value is not None and value < least:
            raise InputError(f"{option} must be at least {least}; received {value}")


def parse_indices(spec: str | None, size: int, option: str) -> list[int] | None:
    """``--layers``/``--positions``: ``3``, ``0,4,7``, a range ``10:20`` or ``-8:`` (as
    Python slices, ends excluded); None for everything."""
    if spec is None:
        return None
    try:
        if ":" in spec:
            start, _, stop = spec.partition(":")
            picked = list(range(size))[slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None)]
        else:
            picked = [int(part) + (size if int(part) < 0 else 0) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"{option} takes indices such as 3, 0,4,7, 10:20 or -8:; received {spec!r}") from None
    bad = [i for i in picked if not 0 <= i < size]
    if not picked or bad:
        raise InputError(f"{option} {spec} selects {'nothing' if not picked else bad} of 0..{size - 1}")
    return picked


def confirm_cost(cost, *, yes: bool) -> int | None:
    """Print an estimate above the thresholds of :mod:`mechscope.patching.cost` and, without
    ``--yes``, refuse to start. Returns the ``max_tokens`` to give the library (None with
    ``--yes``: no limit)."""
    from mechscope.patching.cost import CONFIRM_BYTES, CONFIRM_TOKENS

    limit = None if yes else CONFIRM_TOKENS
    if not cost.over(max_tokens=CONFIRM_TOKENS, max_bytes=CONFIRM_BYTES):
        return limit
    err.print(f"estimate: {escape(cost.describe())}", soft_wrap=True)
    if not yes:
        raise InputError(f"this run is above the threshold for asking first ({CONFIRM_TOKENS:,} tokens or "
                         f"{CONFIRM_BYTES / 2**30:.1f} GB of memory); rerun with --yes to start it. "
                         f"{cost.cheaper()}")
    return limit


# ------------------------------------------------------------------ output names
def output_stem(command: str, *parts: str, options: dict) -> str:
    """``command-parts-HASH``: readable parts, then a short hash of every option that can
    change the result, so two runs that differ in any of them never write the same file."""
    digest = hashlib.blake2b(json.dumps(options, sort_keys=True, default=str).encode(), digest_size=4).hexdigest()
    return "-".join([command, *(safe_stem(str(part)) for part in parts if part), digest])


@contextmanager
def recorded(store: Path | None, no_store: bool, *, command: str, model, task=None, options: dict | None = None,
             no_cache: bool = False, resumable: bool = False) -> Iterator:
    """Run the block inside :func:`mechscope.store.recorder.recording`, in the store the
    options name (none with ``--no-store``), and say where the run was recorded, or, on
    Ctrl-C, what was kept."""
    from mechscope.store import open_store
    from mechscope.store.recorder import recording

    opened = None if no_store else open_store(store)
    recorder = None
    try:
        with recording(opened, command=command, model=model, task=task, options=options,
                       use_cache=not no_cache) as recorder:
            yield recorder
        if opened is not None:
            cached = f" ({len(recorder.cached)} stage(s) served from the store)" if recorder.cached else ""
            out.print(f"recorded as run {recorder.run.id} in {escape(str(opened.path))}{cached}", soft_wrap=True)
    except KeyboardInterrupt:
        if opened is None or recorder is None:
            err.print("interrupted; nothing was kept" + (" (--no-store)" if opened is None else ""))
        else:
            hint = " with --resume" if resumable else ""
            err.print(f"interrupted: run {recorder.run.id} in {escape(str(opened.path))} keeps the parts it finished; "
                      f"rerun the same command{hint} to continue from them", soft_wrap=True)
        raise
    finally:
        if opened is not None:
            opened.close()


def kept_parts(recorder, stage: str, *, resume: bool):
    """A :data:`mechscope.results.Checkpoint` that stores each finished part of ``stage`` as
    a stage of the run (``"patching: layer 3"``) and takes parts an earlier, interrupted
    run of the same computation kept. With ``resume``, a first part the store does not
    hold means there is nothing to continue from: refused, rather than starting over."""
    first = [True]

    def checkpoint(name: str, compute):
        full = f"{stage}: {name}"
        if resume and first[0] and recorder.store is not None and recorder.store.lookup(recorder.key(full)) is None:
            raise InputError(f"--resume: the results store holds no finished part of this {stage} (same model, task "
                             f"and options); run without --resume to start it")
        first[0] = False
        return recorder.stage(full, compute)

    return checkpoint


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


def write_outputs(result, figure, out_dir: Path, stem: str, *, options: dict | None = None,
                  recorder=None, note: str = "") -> list[Path]:
    """Save ``result`` as ``out_dir/stem.json`` (with ``options`` under ``"options"``) and
    ``figure`` (if any) as ``stem.png``, each atomically; attach both to the recorded run."""
    from mechscope.results import write_json
    from mechscope.viz.save import save_figure

    check_out_dir(out_dir)
    data = result.to_dict()
    if options is not None:
        data["options"] = options
    paths = [write_json(out_dir / f"{stem}.json", data)]
    if figure is not None:
        paths.append(save_figure(figure, out_dir / f"{stem}.png"))
    for path in paths:
        if recorder is not None:
            recorder.attach(path.name, path.read_bytes())
        out.print(f"wrote {escape(str(path))}{note if path.suffix == '.png' else ''}", soft_wrap=True)
    return paths


def files_digest(where: Path) -> str:
    """A hash of the files in directory ``where`` (an SAE, a tuned lens), or of the file
    ``where`` (facts, pairs, a saved vector): the same path holding other weights or data is
    another input."""
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(where.iterdir()) if where.is_dir() else [where]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def safe_stem(text: str) -> str:
    """A file-name-safe version of a model name or path."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in Path(text).name or text)


def parse_numbers(option: str, text: str, cast: type = int) -> list:
    """``"0,4,8"`` → ``[0, 4, 8]`` (``cast`` each); anything else is refused naming ``option``."""
    try:
        values = [cast(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        example = "0,4,8" if cast is int else "1,2,4"
        raise InputError(f"{option} takes comma-separated {'integers' if cast is int else 'numbers'} such as "
                         f"{example}; received {text!r}")
    return values
