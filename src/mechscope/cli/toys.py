"""``mechscope toys NAME``: reproduce one of the field's findings on a toy model, check it
against its paper's claims, and write the numbers (JSON) and one PNG per figure::

    mechscope toys superposition --quick     # Elhage et al.: pentagon, phase diagram, dimensionality, SAE
    mechscope toys grokking                  # Nanda et al.: p = 113, trains once (cached), then analyses
    mechscope toys othello --out runs/       # Li et al. / Nanda: legal moves, board probes, interventions
    mechscope toys formation --quick         # Olsson et al.: induction heads forming
    mechscope toys arithmetic                # Nikankin et al.: do the bundled models add?

Trained models are cached under mechscope's cache directory and training resumes from
its last checkpoint when interrupted. ``register(app)`` adds the command.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``toys`` to ``app``."""
    app.command("toys")(toys)


@clean_errors
def toys(
    name: str = typer.Argument(..., help="superposition, grokking, othello, formation or arithmetic."),
    quick: bool = typer.Option(False, "--quick", help="Small configurations: seconds to a few minutes."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder for the JSON and PNGs."),
) -> None:
    """Reproduce a finding of the interpretability literature on a toy model and check it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory (it is created if missing)")
    from mechscope.cli.common import write_outputs
    from mechscope.toys.findings import FINDINGS

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
    stem = f"toys-{name}{'-quick' if quick else ''}"
    write_outputs(findings, None, out_dir, stem)
    for key, figure in findings.figures().items():
        png = out_dir / f"{stem}-{key}.png"
        figure.savefig(png, dpi=110)
        out.print(f"wrote {escape(str(png))}", soft_wrap=True)
