"""Shared pieces of the CLI commands: one-line errors, consoles, writing outputs.

A command module defines ``register(app)`` and decorates its commands with
``@clean_errors`` so that any :class:`MechscopeError` becomes ``error: …`` on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
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
