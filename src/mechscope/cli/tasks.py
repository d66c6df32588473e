"""``mechscope tasks``: how well a model does each task.

    mechscope tasks smollm2-135m                       # every built-in task, 32 pairs each
    mechscope tasks smollm2-135m --task ioi -n 64 --seed 1
    mechscope tasks smollm2-135m --task examples/pairs.jsonl

Prints one row per task (clean accuracy, margin accuracy, mean metric on the clean and
the corrupted prompts) and writes each :class:`TaskReport` as JSON under ``--out``
(``tasks-MODEL-TASK-HASH.json``). Tasks and their metric are resolved as in every
command (:func:`mechscope.tasks.resolve_task`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import (
    TASK_HELP,
    check_at_least,
    check_out_dir,
    check_store,
    clean_errors,
    metric_option,
    model_argument,
    n_option,
    no_cache_option,
    no_store_option,
    out,
    out_option,
    output_stem,
    recorded,
    seed_option,
    store_option,
    write_outputs,
)


def register(app: typer.Typer) -> None:
    """Add the ``tasks`` command to ``app``."""
    app.command("tasks")(tasks)


@clean_errors
def tasks(
    model: str = model_argument(),
    task: list[str] = typer.Option(
        None, "--task", "-t", help=f"{TASK_HELP} Repeat for several (default: every built-in task)."
    ),
    n: int | None = n_option(),
    seed: int | None = seed_option(),
    metric: str | None = metric_option(),
    out_dir: Path = out_option("the JSON reports"),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Evaluate tasks on a model: clean accuracy and mean metric."""
    from mechscope.models import load_model
    from mechscope.tasks import TASKS, check_task, resolve_task
    from mechscope.tasks.evaluate import evaluate_task

    names = task or list(TASKS)
    check_at_least(("-n", n, 1))
    for name in names:
        # Files carry their own prompts: -n and --seed apply to the built-in tasks only.
        check_task(name, metric=metric, **({"n": n, "seed": seed} if name in TASKS else {}))
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    hooked = load_model(model)
    columns = ("task", "n", "clean acc", "margin acc", "metric", "clean", "corrupt")
    table = Table(*columns, title=f"tasks on {escape(model)}")
    options = {"model": model, "tasks": names, "n": n, "seed": seed, "metric": metric}
    with recorded(store, no_store, command="tasks", model=hooked, options=options, no_cache=no_cache) as run:
        reports = []
        for name in names:
            given = {"n": n, "seed": seed} if name in TASKS else {}
            chosen = resolve_task(name, hooked, metric=metric, **given)
            report = run.stage(name, lambda: evaluate_task(hooked, chosen), options={"task_hash": _hash(chosen)})
            reports.append(report)
            run.summary[name] = {"clean_accuracy": report.clean_accuracy, "metric": report.metric}
            table.add_row(escape(name), str(report.n), f"{report.clean_accuracy:.3f}", f"{report.margin_accuracy:.3f}",
                          report.metric, f"{report.clean_metric:.3f}", f"{report.corrupt_metric:.3f}")
        out.print(table)
        for name, report in zip(names, reports):
            own = {**options, "tasks": [name]}
            write_outputs(report, None, out_dir, output_stem("tasks", model, name, options=own), options=own,
                          recorder=run)


def _hash(task) -> str:
    from mechscope.store import task_hash

    return task_hash(task)
