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

Every option left out takes its default from :class:`~mechscope.sae.config.SAEConfig`,
:class:`~mechscope.sae.train_config.TrainConfig` and the constants beside them (the help
names the field); the command prints the configuration it trains with.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, check_out_dir, clean_errors, out, output_stem, write_outputs
from mechscope.errors import InputError


def register(sae_app: typer.Typer) -> None:
    """Add ``train`` to the ``sae`` command group."""
    sae_app.command("train")(clean_errors(sae_train))


def _default(field: str) -> str:
    return f"default: {field}"


def sae_train(
    store_dir: Path = typer.Argument(..., help="Activation store written by `mechscope sae harvest`."),
    out_dir: Path = typer.Option(..., "--out", help="Directory for the trained SAE (SAELens layout)."),
    architecture: str = typer.Option(
        None, "--architecture", "-a", help=f"relu, topk, batchtopk or jumprelu ({_default('SAEConfig.architecture')})."),
    k: int | None = typer.Option(None, "--k", help=f"Latents kept per token (topk, batchtopk; {_default('sae.config.DEFAULT_K')})."),
    width: int | None = typer.Option(None, "--width", help="Latents (d_sae; default: sae.config.DEFAULT_EXPANSION × the input width)."),
    target: str | None = typer.Option(None, "--target", help="Stored hook point to predict: trains a transcoder."),
    skip: bool = typer.Option(False, "--skip", help="Transcoders: add a linear skip connection."),
    tokens: int | None = typer.Option(None, "--tokens", help="Training tokens (default: sae.train_config.DEFAULT_PASSES passes over the store)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help=f"Tokens per step ({_default('TrainConfig.batch_size')})."),
    lr: float | None = typer.Option(None, "--lr", help=f"Adam's peak learning rate ({_default('TrainConfig.lr')})."),
    lr_warmup_steps: int | None = typer.Option(
        None, "--lr-warmup-steps", help=f"Steps of linear warmup ({_default('TrainConfig.lr_warmup_steps')})."),
    lr_decay_fraction: float | None = typer.Option(
        None, "--lr-decay-fraction", help=f"Final fraction of steps decaying to 0 ({_default('TrainConfig.lr_decay_fraction')})."),
    l1: float | None = typer.Option(
        None, "--l1", help=f"relu: L1 coefficient, weighted by decoder norm ({_default('TrainConfig.l1_coefficient')})."),
    l0: float | None = typer.Option(None, "--l0", help=f"jumprelu: L0 coefficient ({_default('TrainConfig.l0_coefficient')})."),
    sparsity_warmup_steps: int | None = typer.Option(
        None, "--sparsity-warmup-steps", help=f"Steps ramping L1/L0 from 0 ({_default('TrainConfig.sparsity_warmup_steps')})."),
    aux_k_coefficient: float | None = typer.Option(
        None, "--aux-k-coefficient", help=f"topk/batchtopk: AuxK weight, 0 off ({_default('TrainConfig.aux_k_coefficient')})."),
    dead_tokens: int | None = typer.Option(
        None, "--dead-tokens", help=f"Tokens without firing before a latent is dead ({_default('TrainConfig.dead_tokens_threshold')})."),
    b_dec_init: str | None = typer.Option(
        None, "--b-dec-init", help=f"geometric_median, mean or zeros ({_default('TrainConfig.b_dec_init')})."),
    normalize: bool | None = typer.Option(
        None, "--normalize/--no-normalize", help=f"Scale activations to mean squared norm d_in ({_default('TrainConfig.normalize_activations')})."),
    seed: int | None = typer.Option(None, "--seed", help=f"Initialisation and data order ({_default('TrainConfig.seed')})."),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir", help="Default: OUT.ckpt next to --out."),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Steps between checkpoints (default: sae.train_config.RESUMABLE_CHECKPOINT_EVERY)."),
    report_dir: Path = typer.Option(DEFAULT_OUT, "--report", help="Directory for the training history JSON."),
) -> None:
    """Train a sparse autoencoder or transcoder on a harvested activation store."""
    from mechscope.activations.store import ActivationStore
    from mechscope.sae.config import ARCHITECTURES
    from mechscope.sae.saelens import save_sae
    from mechscope.sae.train import TrainConfig, train_sae
    from mechscope.sae.train_config import DEFAULT_PASSES, RESUMABLE_CHECKPOINT_EVERY

    check_out_dir(out_dir)
    check_out_dir(report_dir, "--report")
    if checkpoint_dir is not None:
        check_out_dir(checkpoint_dir, "--checkpoint-dir")
    if architecture is not None and architecture not in ARCHITECTURES:
        raise InputError(f"--architecture must be one of {', '.join(ARCHITECTURES)}; received {architecture!r}")
    store = ActivationStore.open(store_dir, target=target)
    if target is not None and target == store.input:
        raise InputError(f"--target {target} is the input point too; give the store's other point ({', '.join(store.hook_names)})")
    if target is None and len(store.hook_names) > 1:
        out.print(f"[dim]reading {escape(store.input)} only; --target {escape(store.hook_names[1])} trains a transcoder[/dim]")
    cfg = _sae_config(store, architecture=architecture, k=k, width=width, target=target, skip=skip)
    config = TrainConfig(
        total_tokens=tokens if tokens is not None else DEFAULT_PASSES * len(store),
        checkpoint_every=checkpoint_every if checkpoint_every is not None else RESUMABLE_CHECKPOINT_EVERY,
        **_given(batch_size=batch_size, lr=lr, lr_warmup_steps=lr_warmup_steps, lr_decay_fraction=lr_decay_fraction,
                 l1_coefficient=l1, l0_coefficient=l0, sparsity_warmup_steps=sparsity_warmup_steps,
                 aux_k_coefficient=aux_k_coefficient, dead_tokens_threshold=dead_tokens, b_dec_init=b_dec_init,
                 normalize_activations=normalize, seed=seed),
    )
    if len(store) < config.batch_size:
        raise InputError(f"the store holds {len(store):,} tokens, fewer than one batch of {config.batch_size:,}; "
                         f"lower --batch-size")
    out.print(f"[dim]training {escape(_describe(cfg, config))}[/dim]", soft_wrap=True)
    checkpoints = checkpoint_dir if checkpoint_dir is not None else out_dir.with_name(out_dir.name + ".ckpt")
    result = train_sae(cfg, store, config, checkpoint_dir=checkpoints)
    save_sae(result.sae, out_dir)
    _print(result, cfg, config)
    options = {"store": str(store_dir), "out": str(out_dir), "sae": _describe(cfg, config)}
    write_outputs(result, None, report_dir, output_stem("sae-train", out_dir.name, options=options), options=options)
    out.print(f"saved to {escape(str(out_dir))}; checkpoints in {escape(str(checkpoints))}", soft_wrap=True)


def _sae_config(store, *, architecture: str | None, k: int | None, width: int | None, target: str | None,
                skip: bool):
    """The SAEConfig of the options given, with the config's defaults for the rest."""
    from mechscope.sae.config import DEFAULT_EXPANSION, DEFAULT_K, SAEConfig

    given = _given(architecture=architecture, skip=skip or None)
    kind = given.get("architecture", SAEConfig.__dataclass_fields__["architecture"].default)
    selective = kind in ("topk", "batchtopk")
    if not selective and k is not None:
        raise InputError(f"--k applies to topk and batchtopk; {kind} has no k (drop --k)")
    return SAEConfig(
        d_in=store.d_in, d_sae=width if width is not None else DEFAULT_EXPANSION * store.d_in,
        k=(k if k is not None else DEFAULT_K) if selective else None, d_out=store.d_out if target else None,
        hook_name=store.input, hook_name_out=target, model_name=store.manifest["model"]["name"], **given,
    )


def _given(**values) -> dict:
    """The options the user gave (not None): everything else keeps the config's default."""
    return {name: value for name, value in values.items() if value is not None}


def _describe(cfg, config) -> str:
    """The configuration, as one line of ``field=value``."""
    import dataclasses

    fields = {**dataclasses.asdict(cfg), **dataclasses.asdict(config)}
    return ", ".join(f"{name}={value}" for name, value in fields.items() if value is not None)


def _print(result, cfg, config) -> None:
    history = result.history
    last = slice(-max(1, min(20, len(history.mse))), None)  # the mean of the last steps: less noisy than one
    table = Table("metric", "value", title=f"{escape(cfg.architecture)} on {escape(cfg.hook_name)}")
    for name, value in (("steps", f"{result.steps:,}"), ("tokens", f"{result.steps * config.batch_size:,}"),
                        ("mse (normalised, last steps)", f"{float(history.mse[last].mean()):.4g}"),
                        ("L0 (last steps)", f"{float(history.l0[last].mean()):.1f}"),
                        ("dead fraction", f"{float(history.dead_fraction[-1]):.1%}"),
                        ("tokens/s", f"{result.tokens_per_second:,.0f}")):
        table.add_row(name, value)
    out.print(table)
