"""``mechscope heads MODEL``: score every attention head's role, print the top heads of
each role, and write the numbers (JSON) next to a figure of layer × head heatmaps (PNG)::

    mechscope heads smollm2-135m                      # mechscope-out/heads-smollm2-135m-HASH.{json,png}
    mechscope heads smollm2-135m --seq-len 40 --n-seqs 8 --seed 0 --out runs/

``register(app)`` adds the command to the ``mechscope`` Typer app.
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
    model_argument,
    no_cache_option,
    no_store_option,
    out,
    out_option,
    output_stem,
    recorded,
    store_option,
)


def register(app: typer.Typer) -> None:
    """Add ``heads`` to ``app``."""
    app.command("heads")(heads)


@clean_errors
def heads(
    model: str = model_argument(),
    seq_len: int = typer.Option(40, "--seq-len", help="Random tokens in each copy of a repeated sequence."),
    n_seqs: int = typer.Option(8, "--n-seqs", help="Repeated random sequences to average over."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random tokens."),
    top: int = typer.Option(5, "-k", "--top", help="Heads to show per role."),
    out_dir: Path = out_option(),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Score attention heads: previous-token, duplicate-token, induction, copying,
    copy-suppression and successor."""
    from mechscope.cli.common import write_outputs
    from mechscope.heads import SCORES, head_roles
    from mechscope.models import load_model

    # Cheap checks first, so a typo never waits for a model to load.
    check_at_least(("--seq-len", seq_len, 2), ("--n-seqs", n_seqs, 1), ("--top", top, 1))
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    hooked = load_model(model)
    options = {"model": model, "seq_len": seq_len, "n_seqs": n_seqs, "seed": seed}
    with recorded(store, no_store, command="heads", model=hooked, options=options, no_cache=no_cache) as run:
        roles = run.stage("head roles", lambda: head_roles(hooked, n_seqs=n_seqs, seq_len=seq_len, seed=seed))
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
            run.summary[score] = cells[:1]
        out.print(table)
        if roles.n_successor_pairs:
            out.print(f"successor pairs: {roles.n_successor_pairs} from {', '.join(roles.successor_sequences)}")
        else:
            out.print("successor: no ordinal sequence of single tokens in this tokenizer; scores are NaN")
        write_outputs(roles, roles.plot(), out_dir, output_stem("heads", model, options=options), options=options,
                      recorder=run)
