"""``mechscope investigate MODEL --task TASK``: the main job, as a report and a stored run.

    mechscope investigate smollm2-135m --task ioi                 # ~10 min on 2 cores
    mechscope investigate smollm2-135m --task ioi --quick         # a first look, ~2 min
    mechscope investigate smollm2-135m --task pairs.jsonl --heldout held.jsonl --sae sae-runs/smollm2-l15/sae

Prints one line per stage (with a bar inside long stages), then the summary and where
the report went: ``OUT/investigate-TASK-MODEL-HASH/report.html`` (open it in a browser)
and ``report.json`` (every number), and the run in the results store.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path

import typer
from rich.markup import escape

from mechscope.cli.common import (
    DEFAULT_OUT,
    clean_errors,
    metric_option,
    model_argument,
    no_cache_option,
    no_store_option,
    out,
    safe_stem,
    store_option,
    task_option,
)
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``investigate`` to ``app``."""
    app.command("investigate")(investigate)


@clean_errors
def investigate(
    model: str = model_argument(),
    task: str = task_option(),
    n: int | None = typer.Option(None, "-n", help="Prompt pairs on each side of the split (default 32; --quick 12)."),
    heldout: Path | None = typer.Option(None, "--heldout", help="A task file of held-out prompts (default: split the task)."),
    sae: list[Path] = typer.Option(None, "--sae", help="An SAE directory (SAELens layout) to attribute features with; repeat for several."),
    seed: int = typer.Option(0, "--seed", help="Seed of the task's prompts and of the split."),
    metric: str | None = metric_option(),
    quick: bool = typer.Option(False, "--quick", help="A first look: fewer prompts, IG steps and sequences."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for report.html and report.json."),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars inside stages."),
) -> None:
    """Investigate a behaviour: where it lives, its circuit, what each part does, checked on held-out prompts."""
    from mechscope.investigate import InvestigateOptions

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory (it is created if missing)")
    for path in [*(sae or []), *([heldout] if heldout else [])]:
        if not path.exists():
            raise InputError(f"{path} does not exist; give an existing SAE directory or task file")
    changes = {k: v for k, v in dict(n=n, seed=seed, metric=metric, heldout=str(heldout) if heldout else None,
                                     sae=tuple(str(s) for s in sae or ())).items() if v is not None}
    opts = InvestigateOptions.quick(**changes) if quick else InvestigateOptions(**changes)
    _run(model, task, opts, out_dir, store, no_store, no_cache, progress)


def _run(model_name, task, opts, out_dir: Path, store, no_store: bool, no_cache: bool, progress: bool) -> None:
    from mechscope.investigate import investigate as run_investigation
    from mechscope.models import load_model
    from mechscope.report import render_investigation
    from mechscope.results import write_text_atomic
    from mechscope.store import open_store

    model = load_model(model_name)
    opened = None if no_store else open_store(store)
    try:
        found = run_investigation(model, task, opts, store=opened, use_cache=not no_cache, progress=progress,
                                  on_stage=_print_stage)
        command = "mechscope investigate " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["investigate"] else ""
        folder = _folder(out_dir, model.name, found.task_name, opts)
        html = render_investigation(found, command=command)
        report = write_text_atomic(folder / "report.html", html)
        data = write_text_atomic(folder / "report.json", json.dumps(found.to_dict(), indent=1) + "\n")
        if opened is not None and found.run_id:
            opened.put_artifact(found.run_id, "report.html", html.encode("utf-8"))
    finally:
        if opened is not None:
            opened.close()
    _print_summary(found)
    out.print(f"report: [bold]{escape(str(report.resolve()))}[/] (numbers in {escape(data.name)})", soft_wrap=True)
    if found.run_id:
        out.print(f"stored as run {found.run_id} (mechscope runs show {found.run_id})")
    if found.refused:
        raise typer.Exit(3)


def _folder(out_dir: Path, model_name: str, task_name: str, opts) -> Path:
    """A folder per model, task and options (a short hash), so runs never overwrite each other."""
    digest = hashlib.blake2b(json.dumps(opts.to_dict(), sort_keys=True).encode(), digest_size=4).hexdigest()
    return out_dir / f"investigate-{safe_stem(task_name)}-{safe_stem(model_name)}-{digest}"


def _print_stage(stage: str, event: str, seconds: float) -> None:
    from mechscope.investigate import STAGES

    number = STAGES.index(stage) + 1
    if event == "start":
        out.print(f"[{number}/{len(STAGES)}] {stage} …", highlight=False)
    else:
        note = " (from the results store)" if event == "cached" else ""
        out.print(f"[{number}/{len(STAGES)}] {stage} done in {seconds:.1f} s{note}", highlight=False)


def _print_summary(found) -> None:
    if found.refused:
        out.print(f"[bold red]stopped[/]: {escape(found.behaviour.refusal)}", soft_wrap=True)
        return
    for claim in found.summary.claims:
        out.print(f"• {escape(claim.text)}", soft_wrap=True)
    for caveat in found.summary.caveats:
        out.print(f"[yellow]⚠ {escape(caveat.text)}[/]", soft_wrap=True)
