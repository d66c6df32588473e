"""``mechscope trace MODEL``: causal tracing of facts, and Geva et al.'s attention knockout.

    mechscope trace smollm2-135m --facts known_1000.json -n 50      # average over the facts the model knows
    mechscope trace smollm2-135m                                     # the built-in facts
    mechscope trace smollm2-135m --prompt "The Eiffel Tower is located in the city of" --subject "Eiffel Tower"
    mechscope trace smollm2-135m --geva                              # also attention knockout, extraction rates

Writes, under ``--out``, ``trace-MODEL-HASH.json`` and ``.png`` (one prompt) or
``trace-average-MODEL-HASH`` (facts), and with ``--geva`` ``knockout-MODEL-HASH`` and
``extraction-MODEL-HASH``; the hash covers the prompt or the facts file's contents and
every option that changes the numbers, and each JSON lists them under ``options``.
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
    files_digest,
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
    """Add ``trace`` to ``app``."""
    app.command("trace")(clean_errors(trace))


def trace(
    model: str = model_argument(),
    facts_file: Path | None = typer.Option(None, "--facts", help="Facts in known_1000.json's layout (.json or .jsonl)."),
    prompt: str | None = typer.Option(None, "--prompt", help="Trace one prompt instead of a facts file."),
    subject: str | None = typer.Option(None, "--subject", help="The subject inside --prompt (its tokens are noised)."),
    answer: str | None = typer.Option(None, "--answer", help="With --prompt: one token to measure, e.g. ' Paris' "
                                      "(default: the model's prediction)."),
    n: int = typer.Option(50, "-n", help="Most facts to trace (of those the model knows)."),
    every_fact: bool = typer.Option(False, "--all", help="Trace facts even where the model's prediction is wrong."),
    kinds: str = typer.Option("hidden,mlp,attn", "--kinds", help="States to restore: hidden, mlp, attn."),
    samples: int = typer.Option(10, "--samples", help="Noise samples."),
    window: int = typer.Option(10, "--window", help="Layers restored together for mlp and attn."),
    noise: float = typer.Option(3.0, "--noise", help="Noise std in multiples of the subjects' embedding std."),
    geva: bool = typer.Option(False, "--geva", help="Also attention knockout and attribute extraction rates (facts)."),
    out_dir: Path = out_option(),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Causal tracing (Meng et al. 2022): where the subject's fact is carried, by layer and token."""
    from mechscope.facts import builtin_facts, load_facts
    from mechscope.models import load_model
    from mechscope.tracing import TraceConfig

    # Every option and output location first, so a typo never waits for a model to load.
    config = TraceConfig(kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), samples=samples,
                         window=window, noise=noise)
    check_at_least(("-n", n, 1))
    _check_inputs(facts_file, prompt, subject, answer, every_fact, geva)
    facts = load_facts(facts_file) if facts_file is not None else builtin_facts() if prompt is None else None
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    traced = {"kinds": list(config.kinds), "samples": samples, "window": window, "noise": noise}
    if prompt is not None:
        options = {"model": model, "prompt": prompt, "subject": subject, "answer": answer, **traced}
    else:
        options = {"model": model, "facts": "built-in" if facts_file is None else str(facts_file),
                   "facts_files": None if facts_file is None else files_digest(facts_file), "n": n,
                   "all": every_fact, **traced}
    hooked = load_model(model)
    with recorded(store, no_store, command="trace", model=hooked, options=options, no_cache=no_cache) as run:
        if prompt is not None:
            _one(hooked, model, prompt, subject, answer, config, out_dir, options, run)
        else:
            _many(hooked, model, facts, n, every_fact, config, geva, out_dir, options, run)


def _check_inputs(facts_file, prompt, subject, answer, every_fact: bool, geva: bool) -> None:
    """Refuse options that contradict each other (or would be ignored) before anything loads."""
    if (prompt is None) != (subject is None):
        raise InputError("--prompt and --subject go together; give both (or neither, to trace facts)")
    if prompt is not None and facts_file is not None:
        raise InputError("give either --facts or --prompt/--subject, not both")
    if prompt is not None and subject not in prompt:
        raise InputError(f"the subject {subject!r} does not occur in the prompt {prompt!r}")
    if prompt is None and answer is not None:
        raise InputError("--answer measures one token of --prompt; facts bring their own attribute")
    if prompt is not None and (every_fact or geva):
        raise InputError(f"{'--all' if every_fact else '--geva'} applies to facts (--facts or the built-in ones), "
                         f"not to one --prompt")


def _one(hooked, model: str, prompt: str, subject: str, answer: str | None, config, out_dir: Path, options: dict,
         run) -> None:
    result = run.stage("causal trace", lambda: _trace_prompt(hooked, prompt, subject, answer, config))
    out.print(f"{escape(prompt)!r} → {escape(repr(result.answer))}: clean p {result.high:.3f}, "
              f"corrupted p {result.low:.3f}", soft_wrap=True)
    table = Table("state", "peak layer", "token", "effect")
    for k, kind in enumerate(result.kinds):
        effects = result.effects[k]
        layer, pos = divmod(int(effects.argmax()), effects.shape[1])
        table.add_row(kind, str(layer), escape(repr(result.tokens[pos])), f"{float(effects.max()):+.3f}")
        run.summary[f"{kind} peak"] = [layer, result.tokens[pos], float(effects.max())]
    out.print(table)
    write_outputs(result, result.plot(), out_dir, output_stem("trace", model, options=options), options=options,
                  recorder=run)


def _trace_prompt(hooked, prompt: str, subject: str, answer: str | None, config):
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
    return causal_trace(hooked, Fact(known_id=0, prompt=prompt, subject=subject, attribute=attribute), config=config)


def _many(hooked, model: str, facts, n: int, every_fact: bool, config, geva: bool, out_dir: Path, options: dict,
          run) -> None:
    from mechscope.facts import known_facts
    from mechscope.store.recorder import RunRefused
    from mechscope.tracing import attention_knockout, attribute_extraction, average_trace

    if not every_fact:
        known = run.stage("known facts", lambda: known_facts(hooked, facts))
        out.print(escape(known.summary()), soft_wrap=True)
        facts = known.facts
        if not facts:
            raise RunRefused(f"{model} gets none of the {known.total} facts right; pass --all to trace them anyway")
    chosen = list(facts)[:n]
    result = run.stage("average trace", lambda: average_trace(hooked, chosen, config=config))
    table = Table("state @ token group", "peak layer", "average indirect effect")
    for name, (layer, effect) in result.summary().items():
        table.add_row(name, str(layer), f"{effect:+.4f}")
    run.summary.update(n_facts=len(chosen), peaks=result.summary())
    out.print(f"{len(chosen)} facts: clean p {result.high:.3f}, corrupted p {result.low:.3f}")
    out.print(table)
    write_outputs(result, result.plot(), out_dir, output_stem("trace", "average", model, options=options),
                  options=options, recorder=run)
    if geva:
        knockout = run.stage("attention knockout", lambda: attention_knockout(hooked, chosen))
        extraction = run.stage("attribute extraction", lambda: attribute_extraction(hooked, chosen))
        for name, found in (("knockout", knockout), ("extraction", extraction)):
            write_outputs(found, found.plot(), out_dir, output_stem(name, model, options=options), options=options,
                          recorder=run)
