"""The training loss of a sparse dictionary on one batch, for every architecture.

The loss is SAELens' (squared error summed over the output, averaged over tokens) plus
the architecture's term: the L1 of latents weighted by decoder norm (``relu``), an L0
through straight-through estimates (``jumprelu``), AuxK on dead latents (``topk``,
``batchtopk``; Gao et al. 2024).

TopK and BatchTopK take a sparse path (:mod:`mechscope.sae.model`'s kernels): one dense
encoder product, everything else over the kept (token, latent) pairs. The dense path is
its reference (a test checks they agree) and serves ``relu``, ``jumprelu`` and dtypes
the sparse kernels lack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mechscope.sae.model import (
    GatherPreacts,
    JumpReLU,
    SparseAutoencoder,
    SparseDecode,
    SparseLatents,
    Step,
    batch_topk_indices,
    batch_topk_relu,
    topk_relu,
)
from mechscope.sae.train_config import TrainConfig


@dataclass(frozen=True)
class StepLosses:
    """The loss of one batch and what the step records (normalised units)."""

    total: Tensor
    """The loss that is differentiated."""
    mse: Tensor
    """Squared error summed over the output, mean over tokens."""
    l0: Tensor
    """Mean active latents per token."""
    fired: Tensor
    """(d_sae,) bool: latents active on at least one token."""
    min_active: Tensor | None
    """``batchtopk``: smallest kept activation (for the inference threshold)."""


def training_losses(
    sae: SparseAutoencoder, x: Tensor, y: Tensor, *, dead: Tensor | None, config: TrainConfig,
    sparsity_scale: float = 1.0, sparse: bool | None = None,
) -> StepLosses:
    """The loss on inputs ``x`` and targets ``y`` (raw units; scaled here).

    ``dead`` (d_sae bool) selects the AuxK latents. ``sparse`` picks the TopK kernels
    (default: for topk/batchtopk in float32/float64) or the dense reference.
    """
    cfg = sae.cfg
    x_n = _scaled(x, sae.input_scale)
    y_n = x_n if y is x and float(sae.output_scale) == float(sae.input_scale) else _scaled(y, sae.output_scale)
    bias = sae.b_enc if cfg.is_transcoder else sae.b_enc - sae.b_dec @ sae.W_enc  # (x − b_dec)·W_enc, folded
    selective = cfg.architecture in ("topk", "batchtopk")
    if sparse is None:
        sparse = selective and sae.W_enc.dtype in (torch.float32, torch.float64)
    if sparse:
        with torch.no_grad():  # the one dense product; mm then add, as the dense path rounds
            pre = (x_n @ sae.W_enc).add_(bias)
        latents = _select(pre, cfg.architecture, cfg.k)
        acts = torch.relu(GatherPreacts.apply(pre, x_n, sae.W_enc, bias, latents))
        recon = SparseDecode.apply(acts, sae.W_dec, latents)
        active = (acts > 0).to(acts.dtype)
        fired = torch.bincount(latents.cols, weights=active, minlength=cfg.d_sae) > 0
    else:
        pre = x_n @ sae.W_enc + bias
        acts = _activate(sae, pre)
        recon = acts @ sae.W_dec
        active = (acts > 0).to(acts.dtype)
        fired = active.amax(0) > 0
    min_active = torch.where(active > 0, acts, torch.inf).min().detach() if cfg.architecture == "batchtopk" else None
    out = recon + sae.b_dec
    if sae.W_skip is not None:
        out = out + x_n @ sae.W_skip
    mse = torch.nn.functional.mse_loss(out, y_n, reduction="sum") / x.shape[0]
    total = mse + sparsity_scale * _sparsity_penalty(sae, pre, acts, config)
    if selective and dead is not None and config.aux_k_coefficient > 0 and bool(dead.any()):
        total = total + _aux_k_loss(sae, x_n, pre, bias, (y_n - out).detach(), dead, config, sparse)
    return StepLosses(total=total, mse=mse.detach(), l0=active.sum() / x.shape[0], fired=fired, min_active=min_active)


def _scaled(t: Tensor, scale: Tensor) -> Tensor:
    return t if float(scale) == 1.0 else t * scale


def _select(pre: Tensor, architecture: str, k: int) -> SparseLatents:
    if architecture == "topk":
        return SparseLatents.from_topk(pre.topk(k, dim=-1, sorted=False).indices, pre.shape[1])
    return SparseLatents.from_flat(batch_topk_indices(torch.relu(pre), k), *pre.shape)


def _activate(sae: SparseAutoencoder, pre: Tensor) -> Tensor:
    cfg = sae.cfg
    if cfg.architecture == "relu":
        return torch.relu(pre)
    if cfg.architecture == "topk":
        return topk_relu(pre, cfg.k)
    if cfg.architecture == "batchtopk":
        return batch_topk_relu(pre, cfg.k)
    return JumpReLU.apply(pre, sae.log_threshold.exp(), cfg.jumprelu_bandwidth)


def _sparsity_penalty(sae: SparseAutoencoder, pre: Tensor, acts: Tensor, config: TrainConfig) -> Tensor | float:
    arch = sae.cfg.architecture
    if arch == "relu":  # weighted by decoder norm, so shrinking the decoder cannot dodge it
        return config.l1_coefficient * (acts * sae.W_dec.norm(dim=1)).sum(-1).mean()
    if arch == "jumprelu":
        threshold = sae.log_threshold.exp()
        return config.l0_coefficient * Step.apply(pre, threshold, sae.cfg.jumprelu_bandwidth).sum(-1).mean()
    return 0.0


def _aux_k_loss(sae, x_n, pre, bias, residual, dead, config, sparse) -> Tensor:
    """AuxK (Gao et al. 2024): the top dead latents, decoded without bias, fit the residual.

    Their pre-activations are used as they are, negative ones too (as Gao et al. and
    SAELens): a dead latent is one whose pre-activation lost, and it must get gradient.
    """
    dead_cols = dead.nonzero().squeeze(1)
    aux_k = config.aux_k if config.aux_k is not None else sae.cfg.output_width // 2
    scale = min(dead_cols.numel() / aux_k, 1.0)
    aux_k = min(aux_k, dead_cols.numel())
    with torch.no_grad():
        chosen = pre.detach()[:, dead_cols].topk(aux_k, dim=-1, sorted=False).indices
    latents = SparseLatents.from_topk(dead_cols[chosen], sae.cfg.d_sae)
    if sparse:
        acts = GatherPreacts.apply(pre, x_n, sae.W_enc, bias, latents)
        recon = SparseDecode.apply(acts, sae.W_dec, latents)
    else:
        mask = torch.zeros_like(pre, dtype=torch.bool)
        mask[latents.rows, latents.cols] = True
        recon = (pre * mask) @ sae.W_dec
    return config.aux_k_coefficient * scale * (recon - residual).pow(2).sum(-1).mean()
