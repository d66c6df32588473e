"""``mechscope sae eval``: an SAE's reconstruction, sparsity and spliced-in loss on held-out text.

    mechscope sae eval smollm2-135m sae/ --tokens 8192
    mechscope sae eval smollm2-135m sae/ --text notes/ --out results/

Prints the metrics and writes ``OUT/sae-eval-MODEL-SAE-HASH.json`` (the hash covers the
SAE's files and every option). The SAE directory is in
SAELens' layout (``cfg.json`` and ``sae_weights.safetensors``). An SAE trained on another
model, on a hook point this model lacks, or on activations of another width is refused
with one line before any work is done.
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


def register(sae_app: typer.Typer) -> None:
    """Add the ``eval`` command to the ``sae`` command group."""
    sae_app.command("eval")(clean_errors(sae_eval))


MODEL_EXTRA = "The model the SAE was trained on."
SAE_HELP = "Directory of a saved SAE or transcoder (SAELens layout: cfg.json + sae_weights.safetensors)."
TEXT_HELP = "Text files or directories to run on (default: mechscope's offline corpus)."
CHECK_HELP = "Accept an SAE whose cfg.model_name differs (the same model under another name or path)."


def sae_eval(
    model: str = model_argument(MODEL_EXTRA),
    sae_dir: Path = typer.Argument(..., help=SAE_HELP),
    tokens: int = typer.Option(4096, "--tokens", "-n", help="Held-out tokens to evaluate on."),
    seq_len: int = typer.Option(128, "--seq-len", help="Tokens per row of text."),
    batch_size: int = typer.Option(8, "--batch-size", help="Rows per forward pass."),
    text: list[Path] | None = typer.Option(None, "--text", help=TEXT_HELP),
    out_dir: Path = out_option("the JSON"),
    skip_model_check: bool = typer.Option(False, "--skip-model-check", help=CHECK_HELP),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Evaluate an SAE: L0, FVU, cosine, shrinkage, CE loss recovered, KL, dead and dense latents."""
    from mechscope.sae.evaluate import evaluate_sae

    check_at_least(("--tokens", tokens, 1), ("--seq-len", seq_len, 2), ("--batch-size", batch_size, 1))
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    hooked, sae = load_model_and_sae(model, sae_dir, skip_model_check=skip_model_check)
    texts = load_texts(text)
    options = {"model": model, "sae": str(sae_dir), "sae_files": files_digest(sae_dir), "tokens": tokens,
               "seq_len": seq_len, "batch_size": batch_size, "text": [str(t) for t in text or []],
               "text_digest": _text_digest(texts)}
    with recorded(store, no_store, command="sae eval", model=hooked, options=options, no_cache=no_cache) as run:
        result = run.stage("sae evaluation", lambda: evaluate_sae(hooked, sae, texts, n_tokens=tokens,
                                                                  seq_len=seq_len, batch_size=batch_size))
        table = Table("metric", "value", title=f"{escape(sae.cfg.hook_name)} of {escape(model)}")
        for name, value in result.summary().items():
            table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
        run.summary.update(result.summary())
        out.print(table)
        write_outputs(result, None, out_dir, output_stem("sae-eval", model, sae_dir, options=options),
                      options=options, recorder=run)


def _text_digest(texts: list[str]) -> str:
    import hashlib

    return hashlib.blake2b("\0".join(texts).encode(), digest_size=8).hexdigest()


def load_texts(paths: list[Path] | None) -> list[str]:
    """The given files' text, or the offline default corpus."""
    from mechscope.corpus import default_texts, read_text_files

    return read_text_files(paths) if paths else default_texts()


def load_model_and_sae(model: str, sae_dir: Path, *, skip_model_check: bool = False):
    """The model and the SAE saved in ``sae_dir``, checked against each other (one clear
    error each: no such directory, an SAE of another model, a hook point or width that
    does not fit)."""
    from mechscope.errors import InputError
    from mechscope.models import load_model
    from mechscope.sae.splice import check_sae_fits

    if not sae_dir.is_dir():
        raise InputError(
            f"SAE directory {sae_dir} does not exist or is not a directory; pass the directory save_sae wrote"
        )
    try:
        from mechscope.sae.saelens import load_sae
    except ImportError:
        raise InputError("reading SAE directories needs mechscope.sae.saelens, which this installation lacks") from None
    sae = load_sae(sae_dir)
    trained_on = sae.cfg.model_name
    if not skip_model_check and trained_on is not None and trained_on not in _names_of(model):
        raise InputError(
            f"the SAE in {sae_dir} was trained on {trained_on!r}, not {model!r}; pass that model "
            f"(or --skip-model-check if {model!r} is the same model under another name)"
        )
    hooked = load_model(model)
    check_sae_fits(hooked, sae)
    return hooked, sae.to(hooked.device)


def _names_of(model: str) -> set[str]:
    """The spellings of one model argument an SAE's cfg.model_name may use."""
    return {model, model.rstrip("/"), Path(model).name}
