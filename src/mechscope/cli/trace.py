"""``mechscope trace MODEL``: causal tracing of facts, and Geva et al.'s attention knockout.

    mechscope trace smollm2-135m --facts known_1000.json -n 50      # average over the facts the model knows
    mechscope trace smollm2-135m                                     # the built-in facts
    mechscope trace smollm2-135m --prompt "The Eiffel Tower is located in the city of" --subject "Eiffel Tower"
    mechscope trace smollm2-135m --geva                              # also attention knockout, extraction rates

Writes ``trace-<model>.json``/``.png`` (one prompt) or ``trace-average-<model>`` (facts),
and with ``--geva`` ``knockout-<model>`` and ``extraction-<model>``, under ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem, write_outputs
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``trace`` to ``app``."""
    app.command("trace")(clean_errors(trace))


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output location that cannot be a directory, before any model loads."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory (it is created if missing)")


def trace(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    facts_file: Path | None = typer.Option(None, "--facts", help="Facts in known_1000.json's layout (.json or .jsonl)."),
    prompt: str | None = typer.Option(None, "--prompt", help="Trace one prompt instead of a facts file."),
    subject: str | None = typer.Option(None, "--subject", help="The subject inside --prompt (its tokens are noised)."),
    answer: str | None = typer.Option(None, "--answer", help="One token to measure, e.g. ' Paris' (default: the model's prediction)."),
    n: int = typer.Option(50, "-n", help="Most facts to trace (of those the model knows)."),
    every_fact: bool = typer.Option(False, "--all", help="Trace facts even where the model's prediction is wrong."),
    kinds: str = typer.Option("hidden,mlp,attn", "--kinds", help="States to restore: hidden, mlp, attn."),
    samples: int = typer.Option(10, "--samples", help="Noise samples."),
    window: int = typer.Option(10, "--window", help="Layers restored together for mlp and attn."),
    noise: float = typer.Option(3.0, "--noise", help="Noise std in multiples of the subjects' embedding std."),
    geva: bool = typer.Option(False, "--geva", help="Also attention knockout and attribute extraction rates."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for the JSON and PNG files."),
) -> None:
    """Causal tracing (Meng et al. 2022): where the subject's fact is carried, by layer and token."""
    from mechscope.facts import builtin_facts, load_facts
    from mechscope.tracing import TraceConfig

    config = TraceConfig(kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), samples=samples,
                         window=window, noise=noise)
    if n < 1:
        raise InputError(f"-n must be at least 1; received {n}")
    if (prompt is None) != (subject is None):
        raise InputError("--prompt and --subject go together; give both (or neither, to trace facts)")
    if prompt is not None and facts_file is not None:
        raise InputError("give either --facts or --prompt/--subject, not both")
    if prompt is not None and subject not in prompt:
        raise InputError(f"the subject {subject!r} does not occur in the prompt {prompt!r}")
    facts = load_facts(facts_file) if facts_file is not None else builtin_facts() if prompt is None else None
    check_out_dir(out_dir)
    from mechscope.models import load_model

    hooked = load_model(model)
    if prompt is not None:
        _one(hooked, model, prompt, subject, answer, config, out_dir)
    else:
        _many(hooked, model, facts, n, every_fact, config, geva, out_dir)


def _one(hooked, model: str, prompt: str, subject: str, answer: str | None, config, out_dir: Path) -> None:
    import torch

    from mechscope.facts import Fact
    from mechscope.tasks.task import single_token
    from mechscope.tracing import causal_trace

    if answer is None:
        with torch.no_grad():
            token = int(hooked(prompt)[0, -1].argmax())
    else:
        token = single_token(hooked, answer)
    attribute = hooked.tokenizer.decode([token])
    fact = Fact(known_id=0, prompt=prompt, subject=subject, attribute=attribute)
    result = causal_trace(hooked, fact, config=config)
    out.print(f"{escape(prompt)!r} → {escape(repr(result.answer))}: clean p {result.high:.3f}, "
              f"corrupted p {result.low:.3f}", soft_wrap=True)
    table = Table("state", "peak layer", "token", "effect")
    for k, kind in enumerate(result.kinds):
        effects = result.effects[k]
        layer, pos = divmod(int(effects.argmax()), effects.shape[1])
        table.add_row(kind, str(layer), escape(repr(result.tokens[pos])), f"{float(effects.max()):+.3f}")
    out.print(table)
    write_outputs(result, result.plot(), out_dir, f"trace-{safe_stem(model)}")


def _many(hooked, model: str, facts, n: int, every_fact: bool, config, geva: bool, out_dir: Path) -> None:
    from mechscope.facts import known_facts
    from mechscope.tracing import attention_knockout, attribute_extraction, average_trace

    if not every_fact:
        known = known_facts(hooked, facts)
        out.print(escape(known.summary()), soft_wrap=True)
        facts = known.facts
        if not facts:
            raise InputError(f"{model} gets none of the {known.total} facts right; pass --all to trace them anyway")
    chosen = list(facts)[:n]
    result = average_trace(hooked, chosen, config=config)
    table = Table("state @ token group", "peak layer", "average indirect effect")
    for name, (layer, effect) in result.summary().items():
        table.add_row(name, str(layer), f"{effect:+.4f}")
    out.print(f"{len(chosen)} facts: clean p {result.high:.3f}, corrupted p {result.low:.3f}")
    out.print(table)
    write_outputs(result, result.plot(), out_dir, f"trace-average-{safe_stem(model)}")
    if geva:
        knockout = attention_knockout(hooked, chosen)
        extraction = attribute_extraction(hooked, chosen)
        write_outputs(knockout, knockout.plot(), out_dir, f"knockout-{safe_stem(model)}")
        write_outputs(extraction, extraction.plot(), out_dir, f"extraction-{safe_stem(model)}")
