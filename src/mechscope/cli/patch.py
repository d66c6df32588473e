"""``mechscope patch MODEL --task ioi``: an activation-patching sweep, as numbers and a figure.

    mechscope patch smollm2-135m --task ioi                     # heads × positions, exact
    mechscope patch smollm2-135m --task ioi --what resid -n 8
    mechscope patch smollm2-135m --task ioi --what heads --method atp*

Writes ``patch-<what>-<task>-<model>.json`` and ``.png`` under ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem, write_outputs
from mechscope.errors import InputError

WHAT = {"heads": "heads_by_pos", "heads-all-pos": "heads", "resid": "resid", "attn": "attn", "mlp": "mlp",
        "q": "q", "k": "k", "v": "v", "pattern": "pattern"}
METHODS = ("exact", "atp", "atp*")


def register(app: typer.Typer) -> None:
    """Add ``patch`` to ``app``."""
    app.command("patch")(patch)


@clean_errors
def patch(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    task: str = typer.Option("ioi", "--task", help="Built-in task (ioi, greater-than, factual, induction, sva) or a .jsonl/.csv file."),
    what: str = typer.Option("heads", "--what", help=f"What to patch: {', '.join(WHAT)}, or a per-layer hook kind (mlp.hook_post)."),
    n: int = typer.Option(16, "-n", help="Number of prompts (built-in tasks)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the task's prompts (built-in tasks)."),
    metric: str | None = typer.Option(None, "--metric", help="logit_diff, prob_diff, kl or normalized (default: normalized, or a file's own)."),
    direction: str = typer.Option("denoise", "--direction", help="denoise (clean into corrupted) or noise."),
    method: str = typer.Option("exact", "--method", help="exact, atp, or atp* (QK fix and GradDrop)."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for the JSON and PNG."),
) -> None:
    """Activation patching (or its AtP estimate) on a task; prints the largest effects."""
    from mechscope.models import load_model
    from mechscope.patching import activation_patching
    from mechscope.patching.attribution import attribution_patching
    from mechscope.tasks.registry import TASKS, make_task

    if method not in METHODS:
        raise InputError(f"unknown --method {method!r}; expected one of {', '.join(METHODS)}")
    if n < 1:
        raise InputError(f"-n must be at least 1; received {n}")
    hooked = load_model(model)
    options = {"n": n, "seed": seed} if task in TASKS else {}
    chosen = make_task(task, hooked, **options)
    if metric is not None or task in TASKS:
        chosen = chosen.with_metric(metric or "normalized")
    if method == "exact":
        result = activation_patching(hooked, chosen, what=WHAT.get(what, what), direction=direction)
    else:
        star = method == "atp*"
        result = attribution_patching(hooked, chosen, what=WHAT.get(what, what), direction=direction,
                                      qk_fix=star, grad_drop=star)
    out.print(f"{escape(chosen.name)} on {escape(model)}: {method} {what} patching ({direction}), metric {chosen.metric}: "
              f"base {result.base_value:.3f}, source {result.source_value:.3f}", soft_wrap=True)
    table = Table("cell", "effect")
    for cell, effect in result.top(10):
        table.add_row(escape(", ".join(f"{k}={v}" for k, v in cell.items())), f"{effect:+.4f}")
    out.print(table)
    stem = f"patch-{safe_stem(what)}-{safe_stem(chosen.name)}-{safe_stem(model)}"
    write_outputs(result, result.plot(), out_dir, stem)
