"""``mechscope sae dashboard``: self-contained HTML dashboards of SAE features.

    mechscope sae dashboard smollm2-135m sae/ --top 20 --out dashboards/
    mechscope sae dashboard smollm2-135m sae/ --features 3,17,42 --tokens 16384

Writes ``OUT/dashboard-MODEL-SAE-HASH.html`` (one page, every feature; open it in any
browser, it fetches nothing) and ``OUT/dashboard-MODEL-SAE-HASH.json`` (every number shown;
the hash covers the SAE's files and every option).
``--top N`` picks the N latents that fire on the most tokens of the text.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mechscope.cli.common import (
    check_at_least,
    check_out_dir,
    clean_errors,
    files_digest,
    model_argument,
    out,
    out_option,
    output_stem,
    write_outputs,
)
from mechscope.cli.sae_eval import CHECK_HELP, MODEL_EXTRA, SAE_HELP, TEXT_HELP, load_model_and_sae, load_texts

DEFAULT_TOP = 10


def register(sae_app: typer.Typer) -> None:
    """Add the ``dashboard`` command to the ``sae`` command group."""
    sae_app.command("dashboard")(clean_errors(sae_dashboard))


def sae_dashboard(
    model: str = model_argument(MODEL_EXTRA),
    sae_dir: Path = typer.Argument(..., help=SAE_HELP),
    features: str | None = typer.Option(None, "--features", "-f", help="Latents to show, comma-separated: 0,1,2."),
    top: int | None = typer.Option(
        None, "--top", help=f"Show the N most frequently firing latents (default {DEFAULT_TOP})."
    ),
    tokens: int = typer.Option(8192, "--tokens", "-n", help="Tokens of text to collect activations on."),
    seq_len: int = typer.Option(64, "--seq-len", help="Tokens per row of text."),
    batch_size: int = typer.Option(8, "--batch-size", help="Rows per forward pass."),
    text: list[Path] | None = typer.Option(None, "--text", help=TEXT_HELP),
    out_dir: Path = out_option("the HTML and the JSON"),
    skip_model_check: bool = typer.Option(False, "--skip-model-check", help=CHECK_HELP),
) -> None:
    """Feature dashboards: top and quantile examples, histogram, density, logits, neighbours."""
    from mechscope.errors import InputError
    from mechscope.sae.dashboard import feature_dashboard

    if features is not None and top is not None:
        raise InputError("give --features or --top, not both")
    chosen = parse_features(features) if features is not None else None
    check_at_least(("--tokens", tokens, 1), ("--seq-len", seq_len, 2), ("--batch-size", batch_size, 1))
    check_out_dir(out_dir)
    hooked, sae = load_model_and_sae(model, sae_dir, skip_model_check=skip_model_check)
    width = sae.cfg.d_sae
    if top is not None and not 1 <= top <= width:
        raise InputError(f"--top {top} is outside 1..{width}: the SAE has {width} latents")
    if chosen is not None:
        bad = [f for f in chosen if not 0 <= f < width]
        if bad:
            raise InputError(f"--features {bad} are outside 0..{width - 1}: the SAE has {width} latents")
    if chosen is None and top is None:
        top = min(DEFAULT_TOP, width)
    boards = feature_dashboard(hooked, sae, load_texts(text), features=chosen, top=top, n_tokens=tokens,
                               seq_len=seq_len, batch_size=batch_size)
    options = {"model": model, "sae": str(sae_dir), "sae_files": files_digest(sae_dir), "features": chosen,
               "top": top, "tokens": tokens, "seq_len": seq_len, "batch_size": batch_size,
               "text": [str(t) for t in text or []]}
    stem = output_stem("dashboard", model, sae_dir, options=options)
    write_outputs(boards, None, out_dir, stem, options=options)
    page = boards.to_html(out_dir / f"{stem}.html")
    out.print(f"wrote {escape(str(page))} ({len(boards.features)} features)", soft_wrap=True)


def parse_features(text: str) -> list[int]:
    """``"0, 1,2"`` -> ``[0, 1, 2]``, or one clear error."""
    from mechscope.errors import InputError

    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise InputError(f"--features must be comma-separated latent indices such as 0,1,2; received {text!r}")
    return [int(part) for part in parts]
