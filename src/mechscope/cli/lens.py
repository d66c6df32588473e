"""``mechscope lens``: the logit lens (or a tuned lens) over one prompt.

    mechscope lens smollm2-135m "The Eiffel Tower is located in the city of" --answer " Paris"
    mechscope lens smollm2-135m "…" --tuned-lens lenses/smollm2 --out results/

Prints the top token each layer reads at the last position and writes
``OUT/lens_MODEL.json`` (every number) next to ``OUT/lens_MODEL.png`` (the heatmap).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem, write_outputs


def register(app: typer.Typer) -> None:
    """Add the ``lens`` command to ``app``."""
    app.command("lens")(clean_errors(lens))


def lens(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    prompt: str = typer.Argument(..., help="The prompt to read layer by layer."),
    answer: str | None = typer.Option(
        None, "--answer", "-a", help="A next token to follow (one token; mind the leading space: ' Paris')."
    ),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="Directory for the JSON and the PNG."),
    tuned_lens: Path | None = typer.Option(
        None, "--tuned-lens", help="Directory of a saved tuned lens (TunedLens.save) to read through instead."
    ),
    top_k: int = typer.Option(5, "-k", "--top-k", help="Top tokens kept per layer and position."),
) -> None:
    """Decode the residual stream before every block as next-token predictions."""
    from mechscope.errors import InputError
    from mechscope.lens import TunedLens, logit_lens
    from mechscope.models import load_model

    if not prompt.strip():
        raise InputError('the prompt is empty; give some text, e.g. mechscope lens MODEL "The capital of France is"')
    if tuned_lens is not None and not tuned_lens.is_dir():
        raise InputError(f"--tuned-lens {tuned_lens} is not a directory; pass the directory TunedLens.save wrote")
    hooked = load_model(model)
    translators = None if tuned_lens is None else TunedLens.load(tuned_lens, hooked)
    result = logit_lens(hooked, prompt, answer=answer, top_k=top_k, tuned_lens=translators)

    title = f"{result.lens}, last position ({escape(repr(result.tokens[-1]))}) of {escape(repr(prompt))}"
    table = Table("layer", "top token", "p", *(("p(answer)", "rank") if result.answer is not None else ()),
                  title=title)
    for layer, label in enumerate(result.layer_labels):
        row = [label, escape(repr(result.top_tokens[layer][-1][0])), f"{float(result.top_probs[layer, -1, 0]):.3f}"]
        if result.answer_probs is not None:
            row += [f"{float(result.answer_probs[layer, -1]):.3g}", str(int(result.answer_ranks[layer, -1]))]
        table.add_row(*row)
    out.print(table)
    stem = f"lens_{safe_stem(model)}" + ("_tuned" if translators is not None else "")
    with warnings.catch_warnings():
        # Top tokens come from any script; a glyph the font lacks is drawn as a box, no need to warn.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        write_outputs(result, result.plot(), out_dir, stem)
