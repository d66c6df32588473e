"""``mechscope edit MODEL``: rewrite one fact with ROME (or MEMIT, FT-L) and show its effect.

    mechscope edit smollm2-135m --prompt "{} is located in the city of" --subject "The Eiffel Tower" --target Rome
    mechscope edit smollm2-135m --prompt "The Eiffel Tower is located in the city of" --subject "Eiffel Tower" \\
        --target Rome --method memit --layer 6 --save eiffel.safetensors

The edited layer comes from causal tracing unless ``--layer`` names it. The model on disk
is never changed: the edit is saved as its low-rank factors (``--save``, default
``OUT/edit-METHOD-MODEL-HASH.safetensors``); ``mechscope.editing.load_edit`` reads it back.
Writes ``edit-METHOD-MODEL-HASH.json`` and ``.png`` (probabilities before and after) under
``--out``; the hash covers the request and every option that changes the edit, and the
JSON lists them under ``options``.
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
    write_outputs,
)
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``edit`` to ``app``."""
    app.command("edit")(clean_errors(edit))


def edit(
    model: str = model_argument(),
    prompt: str = typer.Option(..., "--prompt", help="The prompt, with {} for the subject or the subject written in."),
    subject: str = typer.Option(..., "--subject", help="The subject whose fact changes."),
    target: str = typer.Option(..., "--target", help="The new attribute, e.g. Rome."),
    true: str | None = typer.Option(None, "--true", help="The current attribute (default: the model's prediction)."),
    method: str = typer.Option("rome", "--method", help="rome, memit or ft-l."),
    layer: int | None = typer.Option(None, "--layer", help="Layer to edit (MEMIT: the last); default from causal tracing."),
    save: Path | None = typer.Option(None, "--save", help="Where to write the edit (.safetensors; default beside "
                                     "the JSON, with its name)."),
    new_tokens: int = typer.Option(20, "--generate", help="Greedy tokens generated before and after (0: none)."),
    out_dir: Path = out_option("the JSON, PNG and edit files"),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Edit a fact (ROME by default); print p(new), p(true) and the text before and after."""
    from mechscope.editing import edit_model, save_edit
    from mechscope.editing.methods import get_method
    from mechscope.editing.outcome import edit_outcome
    from mechscope.facts import make_request
    from mechscope.models import load_model

    # Every option and output location first, so a typo never waits for a model to load.
    get_method(method)
    make_request(prompt, subject, target, true if true is not None else "\0")  # checks the prompt and subject
    check_at_least(("--generate", new_tokens, 0))
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    options = {"model": model, "prompt": prompt, "subject": subject, "target": target, "true": true,
               "method": method, "layer": layer, "generate": new_tokens}
    stem = output_stem("edit", method, model, options=options)
    save = save if save is not None else out_dir / f"{stem}.safetensors"
    if save.suffix != ".safetensors" or save.is_dir():
        raise InputError(f"--save must name a .safetensors file; received {save}")
    check_out_dir(save.parent, "--save's directory")

    hooked = load_model(model)
    with recorded(store, no_store, command="edit", model=hooked, options=options, no_cache=no_cache) as run:
        request = make_request(prompt, subject, target, true, model=hooked)
        out.print(f"{method} on {escape(model)}: {escape(request.requested_rewrite.text)!r} "
                  f"{escape(request.requested_rewrite.target_true)} → {escape(request.requested_rewrite.target_new)}",
                  soft_wrap=True)
        result = run.stage("edit", lambda: edit_model(hooked, [request], method=method, layer=layer, progress=True))
        outcome = run.stage("outcome", lambda: edit_outcome(hooked, result, max_new_tokens=new_tokens))
        _print(outcome)
        out.print(f"edited layers {list(result.layers)} in {result.info.get('seconds', 0):.1f}s")
        run.summary.update(layers=list(result.layers), p_new=[list(row.p_new) for row in outcome.rows])
        write_outputs(outcome, outcome.plot(), out_dir, stem, options=options, recorder=run)
        saved = save_edit(result, save)
        run.attach(saved.name, saved.read_bytes())
        out.print(f"wrote {escape(str(saved))}", soft_wrap=True)


def _print(outcome) -> None:
    table = Table("", "p(new)", "p(true)", "top token", "continuation")
    for row in outcome.rows:
        for i, when in enumerate(("before", "after")):
            table.add_row(when, f"{row.p_new[i]:.3f}", f"{row.p_true[i]:.3f}", escape(repr(row.top[i])),
                          escape(row.text[i]))
    out.print(table)
