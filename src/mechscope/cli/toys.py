"""``mechscope toys NAME``: reproduce one of the field's findings on a toy model, check it
against its paper's claims, and write the numbers (JSON) and one PNG per figure::

    mechscope toys superposition --quick     # Elhage et al.: pentagon, phase diagram, dimensionality, SAE
    mechscope toys grokking                  # Nanda et al.: p = 113, trains once (cached), then analyses
    mechscope toys othello --out runs/       # Li et al. / Nanda: legal moves, board probes, interventions
    mechscope toys formation --quick         # Olsson et al.: induction heads forming
    mechscope toys arithmetic                # Nikankin et al.: do the bundled models add?

Trained models are cached under mechscope's cache directory and training resumes from
its last checkpoint when interrupted. Writes ``toys-NAME[-quick]-HASH.json`` and
``toys-NAME[-quick]-HASH-FIGURE.png`` under ``--out`` (the JSON lists the options under
``options``). Runs are not recorded in the results store: no pretrained model is loaded,
and the trained toys have their own cache. ``register(app)`` adds the command.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import check_out_dir, clean_errors, out, out_option, output_stem, write_outputs
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``toys`` to ``app``."""
    app.command("toys")(toys)


@clean_errors
def toys(
    name: str = typer.Argument(..., help="superposition, grokking, othello, formation or arithmetic."),
    quick: bool = typer.Option(False, "--quick", help="Small configurations: seconds to a few minutes."),
    out_dir: Path = out_option("the JSON and PNGs"),
) -> None:
    """Reproduce a finding of the interpretability literature on a toy model and check it."""
    from mechscope.toys.findings import FINDINGS
    from mechscope.viz.save import save_figure

    check_out_dir(out_dir)
    if name not in FINDINGS:
        raise InputError(f"unknown toy {name!r}; choose from {', '.join(FINDINGS)}")
    findings = FINDINGS[name](quick=quick, progress=True)
    table = Table("claim", "held", title=f"{name}{' (quick)' if quick else ''}: the paper's claims")
    for claim, held in findings.checks.items():
        table.add_row(escape(claim), "[green]yes[/]" if held else "[red]no[/]")
    out.print(table)
    numbers = Table("number", "value")
    for key, value in findings.numbers.items():
        numbers.add_row(escape(key), f"{value:.4g}" if isinstance(value, float) else escape(str(value)))
    out.print(numbers)
    options = {"name": name, "quick": quick}
    stem = output_stem("toys", name, "quick" if quick else "", options=options)
    write_outputs(findings, None, out_dir, stem, options=options)
    for key, figure in findings.figures().items():
        out.print(f"wrote {escape(str(save_figure(figure, out_dir / f'{stem}-{key}.png')))}", soft_wrap=True)
