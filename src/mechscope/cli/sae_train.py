"""``mechscope sae train STORE``: train an SAE or transcoder on a harvested store::

    mechscope sae train acts/smollm2-l15 --architecture topk --k 40 --width 4608 \\
        --tokens 4000000 --out saes/l15-topk
    mechscope sae train acts/tc15 --target blocks.15.hook_mlp_out --architecture topk --k 32 \\
        --skip --out saes/l15-transcoder                   # input → target: a transcoder

The SAE is saved in SAELens' layout (``cfg.json`` + ``sae_weights.safetensors``) with the
store's hook points and model name, ready for ``sae eval`` and ``sae dashboard``. The
training history goes to ``REPORT/sae_train_NAME.json``. Checkpoints are written to
``OUT.ckpt/`` (or ``--checkpoint-dir``): rerun the same command after an interruption and
training continues from the last one, to the same result as an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, safe_stem, write_outputs
from mechscope.errors import InputError


def register(sae_app: typer.Typer) -> None:
    """Add ``train`` to the ``sae`` command group."""
    sae_app.command("train")(clean_errors(sae_train))


def sae_train(
    store_dir: Path = typer.Argument(..., help="Activation store written by `mechscope sae harvest`."),
    out_dir: Path = typer.Option(..., "--out", help="Directory for the trained SAE (SAELens layout)."),
    architecture: str = typer.Option("topk", "--architecture", "-a", help="relu, topk, batchtopk or jumprelu."),
    k: int | None = typer.Option(None, "--k", help="Latents kept per token (topk, batchtopk); default 32."),
    width: int | None = typer.Option(None, "--width", help="Latents (d_sae); default 8 × the input width."),
    target: str | None = typer.Option(None, "--target", help="Stored hook point to predict: trains a transcoder."),
    skip: bool = typer.Option(False, "--skip", help="Transcoders: add a linear skip connection."),
    tokens: int | None = typer.Option(None, "--tokens", help="Training tokens (default: 4 passes over the store)."),
    batch_size: int = typer.Option(4096, "--batch-size", help="Tokens per step."),
    lr: float = typer.Option(3e-4, "--lr", help="Adam's peak learning rate."),
    lr_warmup_steps: int = typer.Option(0, "--lr-warmup-steps", help="Steps of linear warmup."),
    lr_decay_fraction: float = typer.Option(0.2, "--lr-decay-fraction", help="Final fraction of steps decaying to 0."),
    l1: float = typer.Option(5.0, "--l1", help="relu: L1 coefficient (weighted by decoder norm)."),
    l0: float = typer.Option(1.0, "--l0", help="jumprelu: L0 coefficient."),
    sparsity_warmup_steps: int = typer.Option(0, "--sparsity-warmup-steps", help="Steps ramping L1/L0 from 0."),
    aux_k_coefficient: float = typer.Option(1.0, "--aux-k-coefficient", help="topk/batchtopk: AuxK weight (0: off)."),
    dead_tokens: int = typer.Option(10_000_000, "--dead-tokens", help="Tokens without firing before a latent is dead."),
    b_dec_init: str = typer.Option("geometric_median", "--b-dec-init", help="geometric_median, mean or zeros."),
    normalize: bool = typer.Option(True, "--normalize/--no-normalize", help="Scale activations to mean squared norm d_in."),
    seed: int = typer.Option(0, "--seed", help="Initialisation and data order."),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir", help="Default: OUT.ckpt next to --out."),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Steps between checkpoints."),
    report_dir: Path = typer.Option(DEFAULT_OUT, "--report", help="Directory for the training history JSON."),
) -> None:
    """Train a sparse autoencoder or transcoder on a harvested activation store."""
    from mechscope.activations.store import ActivationStore
    from mechscope.sae.config import ARCHITECTURES, SAEConfig
    from mechscope.sae.saelens import save_sae
    from mechscope.sae.train import TrainConfig, train_sae

    store = ActivationStore.open(store_dir, target=target)
    if target is not None and target == store.input:
        raise InputError(f"--target {target} is the input point too; give the store's other point ({', '.join(store.hook_names)})")
    if target is None and len(store.hook_names) > 1:
        out.print(f"[dim]reading {escape(store.input)} only; --target {escape(store.hook_names[1])} trains a transcoder[/dim]")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory for the SAE")
    if architecture not in ARCHITECTURES:
        raise InputError(f"--architecture must be one of {', '.join(ARCHITECTURES)}; received {architecture!r}")
    selective = architecture in ("topk", "batchtopk")
    if not selective and k is not None:
        raise InputError(f"--k applies to topk and batchtopk; {architecture} has no k (drop --k)")
    cfg = SAEConfig(
        d_in=store.d_in, d_sae=width if width is not None else 8 * store.d_in, architecture=architecture,
        k=(k if k is not None else 32) if selective else None, d_out=store.d_out if target else None, skip=skip,
        hook_name=store.input, hook_name_out=target, model_name=store.manifest["model"]["name"],
    )
    if tokens is None:
        tokens = 4 * len(store)
    config = TrainConfig(
        total_tokens=tokens, batch_size=batch_size, lr=lr, lr_warmup_steps=lr_warmup_steps,
        lr_decay_fraction=lr_decay_fraction, l1_coefficient=l1, l0_coefficient=l0,
        sparsity_warmup_steps=sparsity_warmup_steps, aux_k_coefficient=aux_k_coefficient,
        dead_tokens_threshold=dead_tokens, b_dec_init=b_dec_init, normalize_activations=normalize, seed=seed,
        checkpoint_every=checkpoint_every,
    )
    if len(store) < batch_size:
        raise InputError(f"the store holds {len(store):,} tokens, fewer than one batch of {batch_size:,}; lower --batch-size")
    checkpoints = checkpoint_dir if checkpoint_dir is not None else out_dir.with_name(out_dir.name + ".ckpt")
    result = train_sae(cfg, store, config, checkpoint_dir=checkpoints)
    save_sae(result.sae, out_dir)
    history = result.history
    last = slice(-max(1, min(20, len(history.mse))), None)  # the mean of the last steps: less noisy than one
    table = Table("metric", "value", title=f"{escape(cfg.architecture)} on {escape(cfg.hook_name)}")
    for name, value in (("steps", f"{result.steps:,}"), ("tokens", f"{result.steps * batch_size:,}"),
                        ("mse (normalised, last steps)", f"{float(history.mse[last].mean()):.4g}"),
                        ("L0 (last steps)", f"{float(history.l0[last].mean()):.1f}"),
                        ("dead fraction", f"{float(history.dead_fraction[-1]):.1%}"),
                        ("tokens/s", f"{result.tokens_per_second:,.0f}")):
        table.add_row(name, value)
    out.print(table)
    write_outputs(result, None, report_dir, f"sae_train_{safe_stem(str(out_dir))}")
    out.print(f"saved to {escape(str(out_dir))}; checkpoints in {escape(str(checkpoints))}", soft_wrap=True)
