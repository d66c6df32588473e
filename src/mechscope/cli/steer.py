"""``mechscope steer MODEL``: steer generation with a vector; ``mechscope steer sweep``: find
where and how hard.

    mechscope steer smollm2-135m --pairs weddings --prompt "I went up to my friend and said"
    mechscope steer smollm2-135m --pairs my_pairs.jsonl --method pca-diff --layer 12 --alpha 4 \\
        --prompt "..." --save vec.safetensors --gguf vec.gguf
    mechscope steer smollm2-135m --vector vec.safetensors --prompt "..."        # or a llama.cpp .gguf
    mechscope steer smollm2-135m --sae sae/ --feature 1234 --alpha 8 --prompt "..."
    mechscope steer sweep smollm2-135m --pairs weddings --layers 3,6,9,12 --alphas 0.25,0.5,1 --max-kl 0.5
    mechscope steer sweep smollm2-135m --pairs my_pairs.jsonl --targets "wedding,bride"

``steer`` prints the prompt's continuation plainly, steered, and steered along a random
direction of the same norm, and writes them as ``steer-SOURCE-MODEL-HASH.json`` (SOURCE:
the pairs, the vector file or ``sae-FEATURE``). ``steer sweep`` steers each layer at each
strength, measures the effect (a built-in pair set's own, ``--targets`` words, or a
``--task``) and the cost (KL and perplexity on held-out corpus text) against random
directions, prints the recommendation under ``--max-kl`` and writes
``steer-sweep-PAIRS-MODEL-HASH.json`` and ``.png``. The hash covers the files read and
every option that changes the result; each JSON lists them under ``options``.
"""

from __future__ import annotations

from pathlib import Path

import click
import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from mechscope.cli.common import (
    TASK_HELP,
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
    parse_numbers,
    recorded,
    store_option,
    write_outputs,
)
from mechscope.errors import InputError


class _RunByDefault(TyperGroup):
    """``mechscope steer MODEL …`` means ``mechscope steer run MODEL …``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


steer_app = typer.Typer(cls=_RunByDefault, add_completion=False, no_args_is_help=True,
                        pretty_exceptions_enable=False,
                        help="Steer a model with a vector (steer MODEL …), or sweep layers and strengths (steer sweep).")


def register(app: typer.Typer) -> None:
    """Add the ``steer`` group (``run``, the default, and ``sweep``) to ``app``."""
    steer_app.command("run")(run)
    steer_app.command("sweep")(sweep)
    app.add_typer(steer_app, name="steer")


def _check_common(out_dir: Path, n: int, method: str, store: Path | None, no_store: bool, no_cache: bool) -> None:
    from mechscope.steering import VECTOR_SOURCES

    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    check_at_least(("-n", n, 1))
    if method not in VECTOR_SOURCES:
        raise InputError(f"unknown --method {method!r}; expected one of {', '.join(VECTOR_SOURCES)}")


def _digest(path: str | Path | None) -> str | None:
    """A hash of the file or directory a source option names (None for a built-in name)."""
    return files_digest(Path(path)) if path is not None and Path(path).exists() else None


def _pairs(name: str, model, n: int, seed: int):
    from mechscope.steering import PAIRS, make_pairs

    return make_pairs(name, model, n=n, seed=seed) if name in PAIRS else make_pairs(name, model)


@clean_errors
def run(
    model: str = model_argument(),
    prompt: str = typer.Option(..., "--prompt", help="Text to continue."),
    pairs: str | None = typer.Option(None, "--pairs", help="Built-in pairs (weddings, sentiment, sva-plural) or a "
                                     ".jsonl/.csv of positive,negative."),
    vector_file: Path | None = typer.Option(None, "--vector", help="A saved vector (.safetensors) or llama.cpp .gguf."),
    sae_dir: Path | None = typer.Option(None, "--sae", help="An SAE directory: steer along --feature's decoder row."),
    feature: int | None = typer.Option(None, "--feature", help="With --sae: the latent."),
    method: str = typer.Option("mean-diff", "--method", help="actadd, mean-diff, pca-diff, probe or sae."),
    layer: int | None = typer.Option(None, "--layer", help="Layer to steer (default: the library's for this model)."),
    alpha: float | None = typer.Option(None, "--alpha", help="Strength (default: the library's)."),
    position: str = typer.Option("last", "--position", help="Where the pairs are read: last, mean, word:W, span:A:B."),
    n: int = typer.Option(32, "-n", help="Pairs (built-in pair sets)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the pairs and sampling."),
    max_new_tokens: int = typer.Option(30, "--max-new-tokens", help="Tokens to generate."),
    sample: bool = typer.Option(False, "--sample/--greedy", help="Sample instead of greedy decoding."),
    save: Path | None = typer.Option(None, "--save", help="Write the vector here (.safetensors)."),
    gguf: Path | None = typer.Option(None, "--gguf", help="Write the vector here as a llama.cpp control vector."),
    out_dir: Path = out_option("the JSON"),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Continue a prompt plainly, steered, and along a random direction of the same norm."""
    from mechscope.activations.positions import Position
    from mechscope.models import load_model
    from mechscope.steering import DEFAULT_ALPHA, default_layer, steered_text

    # Every option and output location first, so a typo never waits for a model to load.
    sources = [s for s in (pairs, vector_file, sae_dir) if s is not None]
    if len(sources) != 1:
        raise InputError("give exactly one of --pairs, --vector or --sae (with --feature)")
    if (sae_dir is None) != (feature is None):
        raise InputError("--sae and --feature go together: the SAE and the latent to steer along")
    _check_common(out_dir, n, method, store, no_store, no_cache)
    Position.parse(position)
    check_at_least(("--max-new-tokens", max_new_tokens, 1))
    if not prompt.strip():
        raise InputError("--prompt is empty; give text to continue")
    for path, option, suffix in ((save, "--save", ".safetensors"), (gguf, "--gguf", ".gguf")):
        if path is not None and path.suffix != suffix:
            raise InputError(f"{option} writes a {suffix} file; received {path}")
        if path is not None:
            check_out_dir(path.parent, f"{option}'s directory")
    data = _pairs(pairs, None, n, seed) if pairs is not None and not _is_builtin(pairs) else None
    sae = _load_sae(sae_dir) if sae_dir is not None else None
    made = pairs is not None  # a vector made here from pairs: its method, position and (built-in) size matter
    options = {"model": model, "prompt": prompt, "pairs": pairs, "feature": feature,
               "vector": None if vector_file is None else str(vector_file),
               "sae": None if sae_dir is None else str(sae_dir),
               "source_files": _digest(pairs if data is not None else vector_file or sae_dir),
               "method": method if made else None, "position": position if made else None,
               "n": n if made and data is None else None, "layer": layer, "alpha": alpha, "seed": seed,
               "max_new_tokens": max_new_tokens, "sample": sample}

    hooked = load_model(model)
    with recorded(store, no_store, command="steer", model=hooked, options=options, no_cache=no_cache) as recorder:
        chosen_layer = default_layer(hooked) if layer is None else layer
        vector = recorder.stage("vector", lambda: _vector(hooked, pairs, data, vector_file, sae, feature, method,
                                                          chosen_layer, position, n, seed))
        # A vector made from pairs has just the chosen layer; a saved or SAE one is steered where it was made
        # unless --layer picks one of its layers.
        layers = [layer] if layer is not None and pairs is None else None
        result = recorder.stage("steered text", lambda: steered_text(
            hooked, vector, prompt, alpha=DEFAULT_ALPHA if alpha is None else alpha, layers=layers,
            max_new_tokens=max_new_tokens, do_sample=sample, seed=seed))
        _print_text(result)
        recorder.summary.update(steered=result.steered, random=result.random)
        if save is not None:
            out.print(f"wrote {escape(str(vector.save(save)))}", soft_wrap=True)
        if gguf is not None:
            from mechscope.steering import export_gguf

            out.print(f"wrote {escape(str(export_gguf(vector, gguf)))}", soft_wrap=True)
        name = pairs if pairs is not None else (vector_file.stem if vector_file is not None else f"sae-{feature}")
        write_outputs(result, None, out_dir, output_stem("steer", Path(name).stem, model, options=options),
                      options=options, recorder=recorder)


def _is_builtin(pairs: str) -> bool:
    from mechscope.steering import PAIRS

    return pairs in PAIRS


def _load_sae(directory: Path):
    from mechscope.sae import load_sae

    return load_sae(directory)


def _vector(model, pairs, data, vector_file, sae, feature, method, layer, position, n, seed):
    from mechscope.steering import SteeringVector, import_gguf, make_vector, vector_from_sae

    if vector_file is not None:
        vector = import_gguf(vector_file, model) if vector_file.suffix == ".gguf" else SteeringVector.load(vector_file)
        vector.check_fits(model)
        return vector
    if sae is not None:
        return vector_from_sae(model, sae, feature)
    data = data if data is not None else _pairs(pairs, model, n, seed)
    return make_vector(model, data, method=method, layers=[layer], position=position)


def _print_text(result) -> None:
    where = ", ".join(result.hook_names)
    out.print(f"[bold]{escape(result.prompt)}[/] ({escape(result.vector['method'])} vector at {escape(where)}, "
              f"alpha {result.alpha:g})", soft_wrap=True)
    for label, text in (("plain", result.plain), ("steered", result.steered), ("random direction", result.random)):
        out.print(f"[bold]{label:>16}[/]: {escape(text)!s}", soft_wrap=True)


@clean_errors
def sweep(
    model: str = model_argument(),
    pairs: str = typer.Option(..., "--pairs", help="Built-in pairs (weddings, sentiment, sva-plural) or a "
                              ".jsonl/.csv of positive,negative."),
    method: str = typer.Option("mean-diff", "--method", help="actadd, mean-diff, pca-diff or probe."),
    layers: str | None = typer.Option(None, "--layers", help="Comma-separated layers (default: about ten, evenly "
                                      "spaced)."),
    alphas: str | None = typer.Option(None, "--alphas", help="Comma-separated strengths (default: SweepConfig's)."),
    targets: str | None = typer.Option(None, "--targets", help="Effect: comma-separated words (each read with a "
                                       "leading space) whose next-token probability steering should raise."),
    task: str | None = typer.Option(None, "--task", help=f"Effect: a task whose metric steering should raise. "
                                    f"{TASK_HELP}"),
    max_kl: float | None = typer.Option(None, "--max-kl", help="Cost limit of the recommendation (nats per token; "
                                        "default: SweepConfig's)."),
    n_random: int | None = typer.Option(None, "--n-random", help="Random directions per layer (default: SweepConfig's)."),
    position: str = typer.Option("last", "--position", help="Where the pairs are read: last, mean, word:W, span:A:B."),
    n: int = typer.Option(32, "-n", help="Pairs (built-in pair sets)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the pairs and the random directions."),
    out_dir: Path = out_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Steer each layer at each strength: effect and cost against random directions; a recommendation."""
    from mechscope.activations.positions import Position
    from mechscope.models import load_model
    from mechscope.steering import NeutralText, SweepConfig, default_sweep_layers, make_vector, steering_sweep
    from mechscope.tasks import check_task
    from mechscope.tasks.registry import TASKS

    # Every option and output location first, so a typo never waits for a model to load.
    _check_common(out_dir, n, method, store, no_store, no_cache)
    chosen_layers = parse_numbers("--layers", layers) if layers is not None else None
    given = {"alphas": None if alphas is None else tuple(parse_numbers("--alphas", alphas, float)),
             "n_random": n_random, "max_kl": max_kl}
    config = SweepConfig(seed=seed, **{key: value for key, value in given.items() if value is not None})
    Position.parse(position)
    if targets is not None and task is not None:
        raise InputError("give --targets or --task (or neither, for a built-in pair set's own effect), not both")
    if targets is None and task is None and not _is_builtin(pairs):
        raise InputError(f"pairs {pairs!r} have no built-in effect; say what steering should change with "
                         f"--targets WORDS or --task NAME")
    if task is not None:
        check_task(task)
    data = None if _is_builtin(pairs) else _pairs(pairs, None, n, seed)
    options = {"model": model, "pairs": pairs, "pairs_files": None if data is None else _digest(pairs),
               "n": n if data is None else None, "method": method, "layers": chosen_layers,
               "alphas": list(config.alphas), "n_random": config.n_random, "max_kl": config.max_kl,
               "targets": targets, "task": task, "task_files": None if task in TASKS else _digest(task), "position": position, "seed": seed}

    hooked = load_model(model)
    with recorded(store, no_store, command="steer sweep", model=hooked, options=options, no_cache=no_cache) as run:
        data = data if data is not None else _pairs(pairs, hooked, n, seed)
        effect = _effect(hooked, pairs, targets, task, seed)
        vector = run.stage("vector", lambda: make_vector(
            hooked, data, method=method, layers=chosen_layers or default_sweep_layers(hooked), position=position))
        result = run.stage("steering sweep", lambda: steering_sweep(hooked, vector, effect, NeutralText.of(hooked),
                                                                    config=config, progress=progress))
        _print_sweep(model, result)
        best = result.recommended
        run.summary["recommended"] = None if best is None else {"layer": best.layer, "alpha": best.alpha}
        write_outputs(result, result.plot(), out_dir, output_stem("steer-sweep", data.name, model, options=options),
                      options=options, recorder=run)


def _effect(model, pairs, targets, task, seed):
    from mechscope.steering import default_effect, target_words, task_effect
    from mechscope.steering.behaviours import NEUTRAL_PROMPTS

    if targets is not None:
        words = [" " + word.strip() for word in targets.split(",") if word.strip()]
        return target_words(model, NEUTRAL_PROMPTS, words, name=f"log p({', '.join(w.strip() for w in words)})")
    if task is not None:
        from mechscope.tasks import make_task
        from mechscope.tasks.registry import TASKS

        return task_effect(model, make_task(task, model, **({"seed": seed + 1} if task in TASKS else {})))
    return default_effect(pairs, model, seed=seed + 1)


def _print_sweep(model: str, result) -> None:
    table = Table("layer", *[f"α={a:g}" for a in result.alphas],
                  title=f"{escape(result.effect_name)} gain (random) / KL, {escape(model)}, unsteered "
                        f"{result.plain_effect:.3g}")
    gain, random_gain = result.effect - result.plain_effect, result.random_effect - result.plain_effect
    for i, layer in enumerate(result.layers):
        cells = [f"{float(gain[i, j]):+.2f} ({float(random_gain[i, j]):+.2f}) / {float(result.kl[i, j]):.2f}"
                 for j in range(len(result.alphas))]
        table.add_row(str(layer), *cells)
    out.print(table)
    best = result.recommended
    if best is None:
        out.print(f"no layer and strength beats the random directions with KL <= {result.max_kl:g}")
    else:
        out.print(f"recommended under KL <= {result.max_kl:g}: layer {best.layer}, alpha {best.alpha:g} "
                  f"(effect {best.effect:.3f} vs random {best.random_effect:.3f}, unsteered {result.plain_effect:.3f}; "
                  f"KL {best.kl:.3f}, perplexity {best.perplexity:.1f} vs {result.plain_perplexity:.1f})",
                  soft_wrap=True)
