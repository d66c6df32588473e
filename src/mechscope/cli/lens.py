"""``mechscope lens``: the logit lens (or a tuned lens) over one prompt.

    mechscope lens smollm2-135m "The Eiffel Tower is located in the city of" --answer " Paris"
    mechscope lens smollm2-135m "…" --tuned-lens lenses/smollm2 --out results/
    mechscope lens smollm2-135m "$(cat long.txt)" --positions -20:     # the last 20 positions

Prints the top token each layer reads at the last position and writes
``OUT/lens-MODEL-HASH.json`` (every number; the hash covers the prompt and every option)
next to ``OUT/lens-MODEL-HASH.png`` (the heatmap). A long prompt is read at its last
:data:`DEFAULT_POSITIONS` positions unless ``--positions`` says otherwise (the JSON grows
with every position: top tokens, probabilities and ranks for each layer), and the figure
draws at most its last :data:`~mechscope.lens.logit_lens.MAX_PLOTTED_POSITIONS`; both say
what they left out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import (
    check_at_least,
    check_out_dir,
    check_store,
    clean_errors,
    err,
    files_digest,
    model_argument,
    no_cache_option,
    no_store_option,
    out,
    out_option,
    output_stem,
    parse_indices,
    recorded,
    store_option,
    write_outputs,
)

DEFAULT_POSITIONS = 256
"""Positions read by default: the last ones of a longer prompt."""


def register(app: typer.Typer) -> None:
    """Add the ``lens`` command to ``app``."""
    app.command("lens")(clean_errors(lens))


def lens(
    model: str = model_argument(),
    prompt: str = typer.Argument(..., help="The prompt to read layer by layer."),
    answer: str | None = typer.Option(
        None, "--answer", "-a", help="A next token to follow (one token; mind the leading space: ' Paris')."
    ),
    out_dir: Path = out_option(),
    tuned_lens: Path | None = typer.Option(
        None, "--tuned-lens", help="Directory of a saved tuned lens (TunedLens.save) to read through instead."
    ),
    top_k: int = typer.Option(5, "-k", "--top-k", help="Top tokens kept per layer and position."),
    positions: str | None = typer.Option(
        None, "--positions", help=f"Positions to read: 3, 0,4,7, 10:20, -8: or : for all (default: the last "
                                  f"{DEFAULT_POSITIONS})."),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Decode the residual stream before every block as next-token predictions."""
    from mechscope.errors import InputError
    from mechscope.lens import TunedLens, logit_lens
    from mechscope.models import load_model

    if not prompt.strip():
        raise InputError('the prompt is empty; give some text, e.g. mechscope lens MODEL "The capital of France is"')
    if tuned_lens is not None and not tuned_lens.is_dir():
        raise InputError(f"--tuned-lens {tuned_lens} is not a directory; pass the directory TunedLens.save wrote")
    check_at_least(("-k", top_k, 1))
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    hooked = load_model(model)
    translators = None if tuned_lens is None else TunedLens.load(tuned_lens, hooked)
    n_pos = hooked.to_batch(prompt).ids.shape[1]
    picked = parse_indices(positions if positions is not None else f"-{DEFAULT_POSITIONS}:", n_pos, "--positions")
    if positions is None and len(picked) < n_pos:
        err.print(f"reading the last {len(picked)} of the prompt's {n_pos} positions (--positions : reads them all)")
    options = {"model": model, "prompt": prompt, "answer": answer, "top_k": top_k, "positions": picked,
               "tuned_lens": None if tuned_lens is None else files_digest(tuned_lens)}
    with recorded(store, no_store, command="lens", model=hooked, options=options, no_cache=no_cache) as run:
        result = run.stage("logit lens", lambda: logit_lens(hooked, prompt, answer=answer, top_k=top_k,
                                                            tuned_lens=translators, positions=picked))
        _print(result, prompt)
        run.summary["last position top token"] = result.top_tokens[-1][-1][0]
        stem = output_stem("lens", model, "tuned" if translators is not None else "", options=options)
        with warnings.catch_warnings():
            # Top tokens come from any script; a glyph the font lacks is drawn as a box, no need to warn.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
            write_outputs(result, result.plot(), out_dir, stem, options=options, recorder=run, note=_drawn(result))


def _print(result, prompt: str) -> None:
    title = f"{result.lens}, last position ({escape(repr(result.tokens[-1]))}) of {escape(repr(prompt[-200:]))}"
    table = Table("layer", "top token", "p", *(("p(answer)", "rank") if result.answer is not None else ()),
                  title=title)
    for layer, label in enumerate(result.layer_labels):
        row = [label, escape(repr(result.top_tokens[layer][-1][0])), f"{float(result.top_probs[layer, -1, 0]):.3f}"]
        if result.answer_probs is not None:
            row += [f"{float(result.answer_probs[layer, -1]):.3g}", str(int(result.answer_ranks[layer, -1]))]
        table.add_row(*row)
    out.print(table)


def _drawn(result) -> str:
    """What the figure left out, if anything."""
    from mechscope.lens.logit_lens import MAX_PLOTTED_POSITIONS

    if len(result.tokens) <= MAX_PLOTTED_POSITIONS:
        return ""
    return f" (the last {MAX_PLOTTED_POSITIONS} of {len(result.tokens)} positions read; the JSON has them all)"

