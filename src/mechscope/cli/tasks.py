"""``mechscope tasks``: how well a model does each task.

    mechscope tasks smollm2-135m                       # every built-in task, 32 pairs each
    mechscope tasks smollm2-135m --task ioi -n 64 --seed 1
    mechscope tasks smollm2-135m --task my_pairs.jsonl

Prints one row per task (clean accuracy, margin accuracy, mean metric on the clean and
the corrupted prompts) and writes each :class:`TaskReport` as JSON under ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem, write_outputs


def register(app: typer.Typer) -> None:
    """Add the ``tasks`` command to ``app``."""
    app.command("tasks")(tasks)


@clean_errors
def tasks(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    task: list[str] = typer.Option(
        None, "--task", "-t", help="Built-in task name or .jsonl/.csv file; repeat for several (default: all built-in)."
    ),
    n: int = typer.Option(32, "-n", help="Prompt pairs per built-in task."),
    seed: int = typer.Option(0, "--seed", help="Seed of the built-in generators."),
    metric: str | None = typer.Option(
        None, "--metric", help="logit_diff, prob_diff, kl or normalized (default: logit_diff, or the file's)."
    ),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for the JSON reports."),
) -> None:
    """Evaluate tasks on a model: clean accuracy and mean metric."""
    from mechscope.models import load_model
    from mechscope.tasks.evaluate import evaluate_task
    from mechscope.tasks.registry import TASKS, make_task

    names = task or list(TASKS)
    hooked = load_model(model)
    columns = ("task", "n", "clean acc", "margin acc", "metric", "clean", "corrupt")
    table = Table(*columns, title=f"tasks on {escape(model)}")
    reports = []
    for name in names:
        # Files carry their own prompts (and maybe a metric): n and seed apply to generators only.
        options = {"n": n, "seed": seed, "metric": metric or "logit_diff"} if name in TASKS else {"metric": metric}
        report = evaluate_task(hooked, make_task(name, hooked, **options))
        reports.append(report)
        table.add_row(escape(name), str(report.n), f"{report.clean_accuracy:.3f}", f"{report.margin_accuracy:.3f}",
                      report.metric, f"{report.clean_metric:.3f}", f"{report.corrupt_metric:.3f}")
    out.print(table)
    for name, report in zip(names, reports):
        write_outputs(report, None, out_dir, f"tasks-{safe_stem(model)}-{safe_stem(name)}")
