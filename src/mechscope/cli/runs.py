"""``mechscope runs``: what the results store holds.

    mechscope runs list                         # newest first: id, command, model, task, status, when
    mechscope runs list --command investigate --model smollm2-135m
    mechscope runs show 20261205-142233-3f9a    # the record, its stages and their times, its files
    mechscope runs export 20261205-142233-3f9a exported/
    mechscope runs delete 20261205-142233-3f9a
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import clean_errors, out, store_option

app = typer.Typer(help="List, show, export and delete the runs in the results store.", no_args_is_help=True,
                  add_completion=False)


def register(parent: typer.Typer) -> None:
    """Add ``runs`` to ``parent``."""
    parent.add_typer(app, name="runs")


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


@app.command("list")
@clean_errors
def list_runs(
    command: str | None = typer.Option(None, "--command", help="Only runs of this command (investigate, patch…)."),
    model: str | None = typer.Option(None, "--model", help="Only runs of this model name."),
    task: str | None = typer.Option(None, "--task", help="Only runs of this task name."),
    days: float | None = typer.Option(None, "--days", help="Only runs started in the last DAYS days."),
    limit: int = typer.Option(50, "--limit", help="Show at most this many."),
    store: Path | None = store_option(),
) -> None:
    """List runs, newest first."""
    from mechscope.store import open_store

    since = None if days is None else time.time() - days * 86400
    with open_store(store) as opened:
        runs = opened.runs(command=command, model=model, task=task, since=since, limit=limit)
        table = Table("id", "command", "model", "task", "status", "started", "seconds",
                      title=f"{len(runs)} run(s) in {escape(str(opened.path))}")
        for run in runs:
            seconds = "-" if run.ended is None else f"{run.ended - run.started:.1f}"
            table.add_row(run.id, run.command, escape(run.model_name), escape(run.task_name or "-"), run.status,
                          _when(run.started), seconds)
        out.print(table)


@app.command("show")
@clean_errors
def show(run_id: str = typer.Argument(..., help="A run id from `mechscope runs list`."),
         store: Path | None = store_option()) -> None:
    """Show a run: its record, its stages with their times, its files."""
    from mechscope.store import open_store

    with open_store(store) as opened:
        run = opened.run(run_id)
        table = Table("field", "value", title=f"run {run.id}")
        for field in ("command", "model_name", "model_hash", "task_name", "task_hash", "version", "status"):
            table.add_row(field, escape(str(getattr(run, field)) or "-"))
        table.add_row("options", escape(", ".join(f"{k}={v}" for k, v in run.options.items()) or "-"))
        table.add_row("started / ended", f"{_when(run.started)} / {_when(run.ended)}")
        if run.error:
            table.add_row("error", escape(run.error))
        out.print(table)
        stages = Table("stage", "type", "seconds", "from store", title="stages")
        for stage in opened.stages(run.id):
            stages.add_row(escape(stage.name), stage.type, f"{stage.seconds:.2f}", "yes" if stage.cached else "")
        out.print(stages)
        for name, digest in opened.artifacts(run.id).items():
            out.print(f"file {escape(name)}: {escape(str(opened.artifact_path(digest)))}", soft_wrap=True)


@app.command("export")
@clean_errors
def export(run_id: str = typer.Argument(..., help="A run id from `mechscope runs list`."),
           out_dir: Path = typer.Argument(..., help="Directory to write run.json and the run's files into."),
           store: Path | None = store_option()) -> None:
    """Write a run (run.json with every stage, and its files) into a directory."""
    from mechscope.errors import InputError
    from mechscope.store import open_store

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; give a directory (it is created if missing)")
    with open_store(store) as opened:
        written = opened.export_run(run_id, out_dir)
    out.print(f"wrote {escape(str(written))}", soft_wrap=True)


@app.command("delete")
@clean_errors
def delete(run_id: str = typer.Argument(..., help="A run id from `mechscope runs list`."),
           store: Path | None = store_option()) -> None:
    """Delete a run, its stages and the files no other run uses."""
    from mechscope.store import open_store

    with open_store(store) as opened:
        opened.delete_run(run_id)
    out.print(f"deleted run {escape(run_id)}")
