"""``mechscope patch MODEL --task ioi``: an activation-patching sweep, as numbers and a figure.

    mechscope patch smollm2-135m --task ioi                     # every head at every position, exact
    mechscope patch smollm2-135m --task ioi --what resid -n 8 --positions -4:
    mechscope patch smollm2-135m --task ioi --what heads --method atp*

``--what`` takes the library's sweep names (:data:`mechscope.patching.SWEEPS`) and
``--method`` its method names (:data:`mechscope.patching.PATCHING_METHODS`). The sweep's
cost is estimated before it starts; above the thresholds of
:mod:`mechscope.patching.cost` the command prints the estimate and a cheaper way, and
starts only with ``--yes``. Each finished layer of an exact sweep (each GradDrop layer of
AtP*) is kept in the results store: after Ctrl-C, ``--resume`` continues from them.

Writes ``patch-<what>-<method>-<task>-<model>-<hash>.json`` and ``.png`` under ``--out``
(the hash covers every option that changes the numbers; the JSON lists them).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import (
    check_at_least,
    check_out_dir,
    check_store,
    clean_errors,
    confirm_cost,
    kept_parts,
    metric_option,
    model_argument,
    n_option,
    no_cache_option,
    no_store_option,
    out,
    out_option,
    output_stem,
    parse_indices,
    recorded,
    resume_option,
    seed_option,
    store_option,
    task_option,
    write_outputs,
    yes_option,
)

SWEEP_HELP = ("What to patch: heads_by_pos (each head at each position), heads (each head, all positions at once), "
              "resid, attn, mlp (by layer × position), q, k, v, pattern (by head), or a per-layer hook kind "
              "such as mlp.hook_post.")


def register(app: typer.Typer) -> None:
    """Add ``patch`` to ``app``."""
    app.command("patch")(patch)


@clean_errors
def patch(
    model: str = model_argument(),
    task: str = task_option(),
    what: str = typer.Option("heads_by_pos", "--what", help=SWEEP_HELP),
    n: int | None = n_option(),
    seed: int | None = seed_option(),
    metric: str | None = metric_option(),
    direction: str = typer.Option("denoise", "--direction", help="denoise (clean into corrupted) or noise."),
    method: str = typer.Option("exact", "--method", help="exact, atp, or atp* (AtP with the QK fix and GradDrop)."),
    layers: str | None = typer.Option(None, "--layers", help="Layers to patch: 3, 0,4,7, 10:20 or -8: (default all)."),
    positions: str | None = typer.Option(
        None, "--positions", help="Positions to patch (sweeps by position): 3, 0,4,7, 10:20 or -8: (default all)."),
    yes: bool = yes_option(),
    resume: bool = resume_option(),
    out_dir: Path = out_option(),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Activation patching (or its AtP estimate) on a task; prints the largest effects."""
    from mechscope.errors import InputError
    from mechscope.models import load_model
    from mechscope.patching import PATCHING_METHODS
    from mechscope.patching.common import DIRECTIONS
    from mechscope.patching.cost import patching_cost
    from mechscope.patching.specs import check_what
    from mechscope.tasks import check_task, resolve_task

    # Every option and output location first, so a typo never waits for a model to load.
    if method not in PATCHING_METHODS:
        raise InputError(f"unknown --method {method!r}; expected one of {', '.join(PATCHING_METHODS)}")
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}; received {direction!r}")
    check_what(what)
    check_at_least(("-n", n, 1))
    check_task(task, n=n, seed=seed, metric=metric)
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache, resume=resume)
    hooked = load_model(model)
    chosen = resolve_task(task, hooked, n=n, seed=seed, metric=metric)
    picked = {"layers": parse_indices(layers, hooked.cfg.n_layers, "--layers"),
              "positions": parse_indices(positions, chosen.clean.ids.shape[1], "--positions")}
    max_tokens = confirm_cost(patching_cost(hooked, chosen, method=method, what=what, **picked), yes=yes)
    options = {"model": model, "task": task, "n": n, "seed": seed, "metric": chosen.metric, "what": what,
               "method": method, "direction": direction, **picked}
    with recorded(store, no_store, command="patch", model=hooked, task=chosen, options=options,
                  no_cache=no_cache, resumable=True) as run:
        keep = kept_parts(run, "patching", resume=resume)
        result = run.stage("patching", lambda: PATCHING_METHODS[method](
            hooked, chosen, what=what, direction=direction, max_tokens=max_tokens, checkpoint=keep, **picked))
        run.summary.update(base=result.base_value, source=result.source_value, top=result.top(3))
        _print(model, chosen, result)
        write_outputs(result, result.plot(), out_dir, output_stem("patch", what, method, chosen.name, model,
                                                                  options=options),
                      options=options, recorder=run)


def _print(model: str, task, result) -> None:
    out.print(f"{escape(task.name)} on {escape(model)}: {result.method} {result.what} patching ({result.direction}), "
              f"metric {task.metric}: base {result.base_value:.3f}, source {result.source_value:.3f}", soft_wrap=True)
    table = Table("cell", "effect")
    for cell, effect in result.top(10):
        table.add_row(escape(", ".join(f"{k}={v}" for k, v in cell.items())), f"{effect:+.4f}")
    out.print(table)
