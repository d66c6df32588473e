"""``mechscope sae harvest MODEL``: store activations at one or two hook points on disk::

    mechscope sae harvest smollm2-135m --hook blocks.15.hook_resid_post --tokens 1000000 \\
        --out acts/smollm2-l15 --dtype bfloat16 --corpus large
    mechscope sae harvest smollm2-135m --hook blocks.15.ln2.hook_normalized \\
        --hook blocks.15.hook_mlp_out --tokens 200000 --out acts/tc15      # a transcoder's pairs

Rerunning the same command after an interruption continues where it stopped. The corpus
is ``default`` (CPython's ``pydoc_data``, ~110K SmolLM2 tokens), ``large`` (that plus the
standard library's docstrings and comments, ~1.4M) or text files and directories;
``--corpus`` may be repeated. ``register(sae_app)`` adds the command to the ``sae`` group.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from mechscope.cli.common import check_at_least, check_out_dir, clean_errors, model_argument, out
from mechscope.errors import InputError

CORPORA = ("default", "large")
"""Named corpora; any other ``--corpus`` value is a path."""


def register(sae_app: typer.Typer) -> None:
    """Add ``harvest`` to the ``sae`` command group."""
    sae_app.command("harvest")(harvest)


@clean_errors
def harvest(
    model: str = model_argument(),
    hooks: list[str] = typer.Option(..., "--hook", help="Hook point to store; twice for a transcoder (input, target)."),
    tokens: int = typer.Option(..., "--tokens", help="How many tokens to store (BOS and padding excluded)."),
    out_dir: Path = typer.Option(..., "--out", help="Store directory (created; a partial harvest there is resumed)."),
    dtype: str | None = typer.Option(None, "--dtype", help="Storage dtype: float32 or bfloat16 (default: harvest's)."),
    corpus: list[str] = typer.Option(["default"], "--corpus", help="default, large, or text files/directories."),
    seq_len: int | None = typer.Option(None, "--seq-len", help="Tokens per row, BOS included (default: harvest's)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Rows per forward pass (default: harvest's)."),
    shard_tokens: int | None = typer.Option(None, "--shard-tokens", help="Tokens per shard file (default: harvest's)."),
    seed: int | None = typer.Option(None, "--seed", help="Order of the rows (default: harvest's)."),
) -> None:
    """Harvest activations into a sharded, resumable on-disk store (options left out take
    the defaults of :func:`mechscope.activations.harvest`)."""
    from mechscope.activations.harvest import harvest as run_harvest
    from mechscope.activations.manifest import DTYPES
    from mechscope.models import load_model

    # Cheap checks first, so that a typo never waits for a model to load.
    check_at_least(("--tokens", tokens, 1), ("--seq-len", seq_len, 2), ("--batch-size", batch_size, 1),
                   ("--shard-tokens", shard_tokens, 1), ("--seed", seed, 0))
    if dtype is not None and dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}; received {dtype!r}")
    if len(hooks) > 2:
        raise InputError(f"--hook takes one point (an autoencoder) or two (a transcoder); received {len(hooks)}")
    check_out_dir(out_dir)
    texts = corpus_texts(corpus)
    hooked = load_model(model)
    started = time.perf_counter()
    given = {name: value for name, value in (("seq_len", seq_len), ("batch_size", batch_size), ("dtype", dtype),
                                             ("shard_tokens", shard_tokens), ("seed", seed)) if value is not None}
    store = run_harvest(hooked, hooks, texts, out_dir, n_tokens=tokens, progress=True, **given)
    seconds = time.perf_counter() - started
    widths = ", ".join(f"{name} ({store.width(name)})" for name in store.hook_names)
    out.print(
        f"stored {len(store):,} tokens of {escape(widths)} as {store.manifest['settings']['dtype']} in "
        f"{len(store.manifest['shards'])} shards under {escape(str(out_dir))} ({seconds:.1f} s this run)", soft_wrap=True,
    )


def corpus_texts(values: list[str]) -> list[str]:
    """The texts that ``--corpus`` values name, in the order given."""
    from mechscope.corpus import default_texts, read_text_files, stdlib_texts

    texts: list[str] = []
    paths = [value for value in values if value not in CORPORA]
    for value in values:
        if value == "default":
            texts += default_texts()
        elif value == "large":
            texts += default_texts() + stdlib_texts()
    if paths:
        texts += read_text_files(paths)
    return texts
