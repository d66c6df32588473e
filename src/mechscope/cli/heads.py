"""``mechscope heads MODEL``: score every attention head's role, print the top heads of
each role, and write the numbers (JSON) next to a figure of layer × head heatmaps (PNG)::

    mechscope heads smollm2-135m                      # mechscope-out/heads-smollm2-135m.{json,png}
    mechscope heads smollm2-135m --seq-len 40 --n-seqs 8 --seed 0 --out runs/

``register(app)`` adds the command to the ``mechscope`` Typer app.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``heads`` to ``app``."""
    app.command("heads")(heads)


@clean_errors
def heads(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    seq_len: int = typer.Option(40, "--seq-len", help="Random tokens in each copy of a repeated sequence."),
    n_seqs: int = typer.Option(8, "--n-seqs", help="Repeated random sequences to average over."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random tokens."),
    top: int = typer.Option(5, "-k", "--top", help="Heads to show per role."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder for the JSON and PNG."),
) -> None:
    """Score attention heads: previous-token, duplicate-token, induction, copying,
    copy-suppression and successor."""
    from mechscope.cli.common import write_outputs
    from mechscope.heads import SCORES, head_roles
    from mechscope.models import load_model

    # Cheap checks first, so a typo never waits for a model to load.
    for name, value, least in (("--seq-len", seq_len, 2), ("--n-seqs", n_seqs, 1), ("--top", top, 1)):
        if value < least:
            raise InputError(f"{name} must be at least {least}; received {value}")
    hooked = load_model(model)
    roles = head_roles(hooked, n_seqs=n_seqs, seq_len=seq_len, seed=seed)
    table = Table("role", f"top {top} heads (score)", "no role ≈",
                  title=f"head roles of {escape(model)}: {n_seqs} × 2 × {seq_len} random tokens, seed {seed}")
    for score in SCORES:
        cells = []
        for layer, head, value in roles.top(score, top):
            cell = f"L{layer}H{head} {value:.2f}"
            if score == "induction":  # Olsson et al.'s second axis: does it copy what it attends to?
                cell += f" (copy {float(roles.copying[layer, head]):.2f})"
            cells.append(cell)
        table.add_row(score.replace("_", " "), ", ".join(cells) or "-", f"{roles.baselines[score]:.3f}")
    out.print(table)
    if roles.n_successor_pairs:
        out.print(f"successor pairs: {roles.n_successor_pairs} from {', '.join(roles.successor_sequences)}")
    else:
        out.print("successor: no ordinal sequence of single tokens in this tokenizer; scores are NaN")
    write_outputs(roles, roles.plot(), out_dir, f"heads-{safe_stem(model)}")
