"""Train a sparse autoencoder or transcoder on a reproducible stream of activations.

    from mechscope.sae import SAEConfig
    from mechscope.activations.source import TensorSource
    from mechscope.sae.train import TrainConfig, train_sae

    cfg = SAEConfig(d_in=576, d_sae=4608, architecture="topk", k=32, hook_name="blocks.15.hook_resid_post")
    result = train_sae(cfg, TensorSource(acts), TrainConfig(total_tokens=50_000_000),
                       checkpoint_dir="ckpt/")      # resumes from ckpt/ if a run was cut short
    result.sae                                      # reads raw activations; save_sae(result.sae, "sae/")
    result.history.l0, result.history.dead_fraction

The loss is :func:`mechscope.sae.losses.training_losses`, the options
:class:`mechscope.sae.train_config.TrainConfig` and the checkpoints
:mod:`mechscope.sae.checkpoint`'s. Training runs on activations scaled to a mean squared
norm of d_in when ``normalize_activations`` (the scales live in the SAE's buffers and are
folded into the weights by :func:`mechscope.sae.saelens.save_sae`).

Nothing random happens after initialisation: batch ``i`` of epoch ``e`` is
``source.batches(seed=seed + e, start=i)``'s first, so a checkpoint (weights, Adam state,
dead-latent counters, history, and the position in the data) resumes to exactly the
same result as an uninterrupted run.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.source import ActivationSource, Batch
from mechscope.errors import InputError
from mechscope.results import Result
from mechscope.sae.checkpoint import HISTORY_FIELDS, TrainingState, latest_checkpoint, load_checkpoint, save_checkpoint
from mechscope.sae.config import SAEConfig
from mechscope.sae.geometric_median import geometric_median
from mechscope.sae.losses import StepLosses, training_losses
from mechscope.sae.model import SparseAutoencoder
from mechscope.sae.train_config import B_DEC_INITS, TrainConfig, learning_rate, sparsity_scale

__all__ = ["B_DEC_INITS", "StepLosses", "TrainConfig", "TrainHistory", "TrainResult", "learning_rate",
           "train_sae", "training_losses"]


@dataclass(frozen=True)
class TrainHistory:
    """One value per optimiser step, in normalised units where scales are used."""

    loss: Float[Tensor, "step"]
    """Total loss."""
    mse: Float[Tensor, "step"]
    """Squared error summed over the output, mean over tokens."""
    l0: Float[Tensor, "step"]
    """Mean active latents per token."""
    dead_fraction: Float[Tensor, "step"]
    """Fraction of latents that have not fired for ``dead_tokens_threshold`` tokens."""
    lr: Float[Tensor, "step"]
    """Learning rate used."""


@dataclass(frozen=True)
class TrainResult(Result):
    """A trained dictionary and how training went."""

    sae: SparseAutoencoder
    """The trained SAE (eval mode; reads raw activations; scales not yet folded)."""
    history: TrainHistory
    """Per-step loss, reconstruction error, L0, dead fraction and learning rate."""
    config: TrainConfig
    """The training configuration."""
    steps: int
    """Optimiser steps taken in all (including before a resume)."""
    resumed_from: int | None
    """The checkpoint step this call resumed from, if any."""
    seconds: float
    """Wall time of this call."""
    tokens_per_second: float
    """Training throughput of this call (tokens of the steps it ran / wall time)."""

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["sae"] = dataclasses.asdict(self.sae.cfg)
        return out


# --------------------------------------------------------------------- training
def train_sae(
    sae_or_cfg: SparseAutoencoder | SAEConfig,
    source: ActivationSource,
    config: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``sae_or_cfg`` (not modified: a copy is trained) on ``source`` with Adam.

    A given SAE only sets the starting weights: unless ``config`` says otherwise
    (``normalize_activations=False``, ``b_dec_init=None``, ``unit_norm_decoder=False``) its
    scales are re-estimated, its decoder bias re-initialised and its decoder rows
    normalised from the data first, as for a fresh one.

    With ``checkpoint_dir``, saves there every ``config.checkpoint_every`` steps and at
    the end, and first resumes from the latest checkpoint found (which must come from the
    same configurations): the result equals an uninterrupted run's, bit for bit.
    """
    started = time.perf_counter()
    sae = _fresh_sae(sae_or_cfg, config.seed)
    optimizer = _adam(sae, config)
    state = TrainingState(step=0, epoch=0, position=0, history={k: [] for k in HISTORY_FIELDS},
                      tokens_since_fired=torch.zeros(sae.cfg.d_sae, dtype=torch.long, device=sae.W_dec.device))
    latest = latest_checkpoint(Path(checkpoint_dir)) if checkpoint_dir is not None else None
    if latest is not None:
        state = load_checkpoint(latest, sae, optimizer, config)
    else:
        _initialise_from_data(sae, source, config)
    resumed_from = state.step if latest is not None else None
    first_step = state.step
    sae.train()
    bar = tqdm(total=config.steps, initial=state.step, desc="train sae", unit="step", disable=not progress, dynamic_ncols=True)
    try:
        batches = _batches(source, config, state.epoch, state.position)
        while state.step < config.steps:
            epoch, position, batch = next(batches)
            record = _train_step(sae, optimizer, batch, state, config)
            state.step, state.epoch, state.position = state.step + 1, epoch, position + 1
            for key, value in zip(HISTORY_FIELDS, record):
                state.history[key].append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{record[0]:.4g}", l0=f"{record[2]:.1f}", dead=f"{record[3]:.1%}", refresh=False)
            if checkpoint_dir is not None and config.checkpoint_every and state.step % config.checkpoint_every == 0:
                save_checkpoint(Path(checkpoint_dir), sae, optimizer, state, config)
    finally:
        bar.close()
    if checkpoint_dir is not None and resumed_from != state.step and not (
        config.checkpoint_every and state.step % config.checkpoint_every == 0
    ):
        save_checkpoint(Path(checkpoint_dir), sae, optimizer, state, config)
    sae.eval()
    seconds = time.perf_counter() - started
    history = TrainHistory(**{k: torch.tensor(v, dtype=torch.float32) for k, v in state.history.items()})
    return TrainResult(sae=sae, history=history, config=config, steps=state.step, resumed_from=resumed_from,
                       seconds=seconds, tokens_per_second=(state.step - first_step) * config.batch_size / seconds)


def _fresh_sae(sae_or_cfg: SparseAutoencoder | SAEConfig, seed: int) -> SparseAutoencoder:
    if isinstance(sae_or_cfg, SparseAutoencoder):
        return copy.deepcopy(sae_or_cfg)
    if not isinstance(sae_or_cfg, SAEConfig):
        raise InputError(f"train_sae expects a SparseAutoencoder or an SAEConfig; received {type(sae_or_cfg).__name__}")
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG
        torch.manual_seed(seed)
        return SparseAutoencoder(sae_or_cfg)


def _adam(sae: SparseAutoencoder, config: TrainConfig) -> torch.optim.Adam:
    kw = {"lr": config.lr, "betas": tuple(config.adam_betas), "eps": config.adam_eps}
    try:  # the fused kernel is several times faster on CPU and GPU alike
        return torch.optim.Adam(sae.parameters(), fused=True, **kw)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(sae.parameters(), foreach=True, **kw)


def _batches(source: ActivationSource, config: TrainConfig, epoch: int, position: int) -> Iterator[tuple[int, int, Batch]]:
    """(epoch, index in epoch, batch) forever, starting at ``position`` of ``epoch``."""
    while True:
        empty = True
        for batch in source.batches(config.batch_size, seed=config.seed + epoch, start=position):
            empty = False
            yield epoch, position, batch
            position += 1
        if empty and position == 0:
            raise InputError(
                f"the activation source yields no batch of {config.batch_size} tokens; "
                "fix: a smaller batch_size, or more activations"
            )
        epoch, position = epoch + 1, 0


def _split(batch: Batch, sae: SparseAutoencoder) -> tuple[Tensor, Tensor]:
    """(inputs, targets) on the SAE's device and dtype; an autoencoder's target is its input."""
    cfg, like = sae.cfg, sae.W_enc
    if isinstance(batch, (tuple, list)):
        if not cfg.is_transcoder:
            raise InputError("the source yields (input, target) pairs but the SAE is an autoencoder; set SAEConfig.d_out to train a transcoder")
        x, y = (t.to(like.device, like.dtype, non_blocking=True) for t in batch)
    else:
        if cfg.is_transcoder:
            raise InputError("a transcoder trains on (input, target) pairs; the source yields single tensors")
        x = y = batch.to(like.device, like.dtype, non_blocking=True)
    if x.shape[-1] != cfg.d_in or y.shape[-1] != cfg.output_width:
        raise InputError(
            f"batches must be (batch, {cfg.d_in}) inputs and (batch, {cfg.output_width}) targets for this SAE; "
            f"received {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x, y


@torch.no_grad()
def _initialise_from_data(sae: SparseAutoencoder, source: ActivationSource, config: TrainConfig) -> None:
    """Scales and decoder bias from the first ``init_batches`` batches; unit-norm decoder."""
    if config.unit_norm_decoder:
        sae.normalize_decoder()
    if config.b_dec_init == "zeros":
        sae.b_dec.zero_()
    if not config.normalize_activations and config.b_dec_init in (None, "zeros"):
        return  # nothing to estimate: read no data
    pairs = [_split(b, sae) for b in islice(source.batches(config.batch_size, seed=config.seed, start=0), config.init_batches)]
    if not pairs:
        raise InputError(f"the activation source yields no batch of {config.batch_size} tokens; fix: a smaller batch_size, or more activations")
    x = torch.cat([p[0] for p in pairs])
    y = x if not sae.cfg.is_transcoder else torch.cat([p[1] for p in pairs])
    if config.normalize_activations:
        s_in = (x.shape[1] / x.pow(2).sum(-1).mean()).sqrt()
        s_out = s_in if not sae.cfg.is_transcoder else (y.shape[1] / y.pow(2).sum(-1).mean()).sqrt()
        sae.input_scale.fill_(float(s_in))
        sae.output_scale.fill_(float(s_out))
    target = y * sae.output_scale
    if config.b_dec_init == "geometric_median":
        sae.b_dec.copy_(geometric_median(target))
    elif config.b_dec_init == "mean":
        sae.b_dec.copy_(target.mean(0))


# ------------------------------------------------------------------- one step
def _train_step(sae, optimizer, batch, state: TrainingState, config: TrainConfig) -> tuple[float, ...]:
    x, y = _split(batch, sae)
    lr = learning_rate(config, state.step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    dead = state.tokens_since_fired >= config.dead_tokens_threshold
    losses = training_losses(sae, x, y, dead=dead, config=config, sparsity_scale=sparsity_scale(config, state.step))
    losses.total.backward()
    if config.unit_norm_decoder:
        _remove_parallel_gradient(sae.W_dec)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        if config.unit_norm_decoder:
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-12)
        if losses.min_active is not None and bool(losses.min_active.isfinite()):
            rate = 1.0 if state.step == 0 else config.batchtopk_threshold_lr
            sae.threshold.lerp_(losses.min_active.to(sae.threshold.dtype), rate)
        state.tokens_since_fired += x.shape[0]
        state.tokens_since_fired[losses.fired] = 0
        dead_fraction = (state.tokens_since_fired >= config.dead_tokens_threshold).float().mean()
        values = torch.stack([losses.total.detach(), losses.mse, losses.l0.to(losses.mse.dtype), dead_fraction.to(losses.mse.dtype)])
    return (*values.float().tolist(), lr)


@torch.no_grad()
def _remove_parallel_gradient(W_dec: torch.nn.Parameter) -> None:
    """Drop each row's gradient along the (unit) row: the step then only rotates rows."""
    if W_dec.grad is not None:
        W_dec.grad -= (W_dec.grad * W_dec).sum(-1, keepdim=True) * W_dec
