"""``mechscope edit MODEL``: rewrite one fact with ROME (or MEMIT, FT-L) and show its effect.

    mechscope edit smollm2-135m --prompt "{} is located in the city of" --subject "The Eiffel Tower" --target Rome
    mechscope edit smollm2-135m --prompt "The Eiffel Tower is located in the city of" --subject "Eiffel Tower" \\
        --target Rome --method memit --layer 6 --save eiffel.safetensors

The edited layer comes from causal tracing unless ``--layer`` names it. The model on disk
is never changed: the edit is saved as its low-rank factors (``--save``, default
``<out>/edit-<model>.safetensors``); ``mechscope.editing.load_edit`` reads it back.
Writes ``edit-<model>.json`` and ``.png`` (probabilities before and after) under ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem, write_outputs
from mechscope.cli.trace import check_out_dir
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``edit`` to ``app``."""
    app.command("edit")(clean_errors(edit))


def edit(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    prompt: str = typer.Option(..., "--prompt", help="The prompt, with {} for the subject or the subject written in."),
    subject: str = typer.Option(..., "--subject", help="The subject whose fact changes."),
    target: str = typer.Option(..., "--target", help="The new attribute, e.g. Rome."),
    true: str | None = typer.Option(None, "--true", help="The current attribute (default: the model's prediction)."),
    method: str = typer.Option("rome", "--method", help="rome, memit or ft-l."),
    layer: int | None = typer.Option(None, "--layer", help="Layer to edit (MEMIT: the last); default from causal tracing."),
    save: Path | None = typer.Option(None, "--save", help="Where to write the edit (.safetensors)."),
    new_tokens: int = typer.Option(20, "--generate", help="Greedy tokens generated before and after (0: none)."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for the JSON, PNG and edit files."),
) -> None:
    """Edit a fact (ROME by default); print p(new), p(true) and the text before and after."""
    from mechscope.editing.methods import get_method
    from mechscope.facts import make_request

    get_method(method)
    make_request(prompt, subject, target, true if true is not None else "\0")  # checks the prompt and subject
    if new_tokens < 0:
        raise InputError(f"--generate must be 0 or more tokens; received {new_tokens}")
    check_out_dir(out_dir)
    save = save if save is not None else out_dir / f"edit-{safe_stem(model)}.safetensors"
    if save.suffix != ".safetensors" or save.is_dir():
        raise InputError(f"--save must name a .safetensors file; received {save}")
    from mechscope.editing import edit_model, save_edit
    from mechscope.editing.outcome import edit_outcome
    from mechscope.models import load_model

    hooked = load_model(model)
    request = make_request(prompt, subject, target, true, model=hooked)
    out.print(f"{method} on {escape(model)}: {escape(request.requested_rewrite.text)!r} "
              f"{escape(request.requested_rewrite.target_true)} → {escape(request.requested_rewrite.target_new)}",
              soft_wrap=True)
    result = edit_model(hooked, [request], method=method, layer=layer, progress=True)
    outcome = edit_outcome(hooked, result, max_new_tokens=new_tokens)
    table = Table("", "p(new)", "p(true)", "top token", "continuation")
    for row in outcome.rows:
        for i, when in enumerate(("before", "after")):
            table.add_row(when, f"{row.p_new[i]:.3f}", f"{row.p_true[i]:.3f}", escape(repr(row.top[i])),
                          escape(row.text[i]))
    out.print(table)
    out.print(f"edited layers {list(result.layers)} in {result.info.get('seconds', 0):.1f}s")
    write_outputs(outcome, outcome.plot(), out_dir, f"edit-{safe_stem(model)}")
    out.print(f"wrote {escape(str(save_edit(result, save)))}", soft_wrap=True)
