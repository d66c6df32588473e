"""SparseAutoencoder: a sparse dictionary over one hook point's activations.

    sae = SparseAutoencoder(SAEConfig(d_in=576, d_sae=4608, architecture="topk", k=32))
    out = sae(x)                  # SAEOutput: output (reconstruction), latents, pre_acts
    f = sae.encode(x)             # d_sae latents per token, mostly zero
    x_hat = sae.decode(f)

Shapes follow SAELens: ``W_enc`` (d_in d_sae), ``W_dec`` (d_sae d_out), ``b_enc``,
``b_dec``; the decoder bias is subtracted from an autoencoder's input before encoding.
A transcoder (``d_out`` set) predicts another activation (an MLP's output from its
input), optionally with a linear skip ``W_skip`` (d_in d_out).

``input_scale`` and ``output_scale`` (buffers, 1 by default) let training run on
normalised activations: the input is multiplied by ``input_scale`` before encoding and
the output divided by ``output_scale`` after decoding. :meth:`fold_scales` folds them
into the weights (on save), leaving a model that reads raw activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from mechscope.sae.config import SAEConfig


@dataclass(frozen=True)
class SAEOutput:
    """One pass through a sparse dictionary."""

    output: Float[Tensor, "... d_out"]
    """The reconstruction (autoencoder) or prediction (transcoder), in raw activation units."""
    latents: Float[Tensor, "... d_sae"]
    """Latent activations after the sparsifying nonlinearity (mostly zeros)."""
    pre_acts: Float[Tensor, "... d_sae"]
    """Encoder pre-activations, before the nonlinearity."""


class SparseAutoencoder(nn.Module):
    """A sparse autoencoder or transcoder of any of the four architectures."""

    def __init__(self, cfg: SAEConfig, *, dtype: torch.dtype = torch.float32, device=None) -> None:
        super().__init__()
        self.cfg = cfg
        kw = {"dtype": dtype, "device": device}
        d_in, d_sae, d_out = cfg.d_in, cfg.d_sae, cfg.output_width
        decoder = torch.randn(d_sae, d_out, **kw)
        decoder /= decoder.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(decoder)
        # encoder starts as the decoder's transpose where the shapes allow (a common init)
        self.W_enc = nn.Parameter(decoder.T.clone() if d_out == d_in else torch.randn(d_in, d_sae, **kw) / d_in**0.5)
        self.b_enc = nn.Parameter(torch.zeros(d_sae, **kw))
        self.b_dec = nn.Parameter(torch.zeros(d_out, **kw))
        self.W_skip = nn.Parameter(torch.zeros(d_in, d_out, **kw)) if cfg.skip else None
        if cfg.architecture == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((d_sae,), float(torch.tensor(cfg.jumprelu_init_threshold).log()), **kw))
        # batchtopk at inference: one threshold for all latents, estimated while training
        self.register_buffer("threshold", torch.zeros((), **kw))
        self.register_buffer("input_scale", torch.ones((), **kw))
        self.register_buffer("output_scale", torch.ones((), **kw))

    # ------------------------------------------------------------------ passes
    def encode_pre(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        x = x.to(self.W_enc.dtype) * self.input_scale
        if not self.cfg.is_transcoder:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def activate(self, pre: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_sae"]:
        """The architecture's sparsifying nonlinearity."""
        arch = self.cfg.architecture
        if arch == "relu":
            return torch.relu(pre)
        if arch == "topk":
            return topk_relu(pre, self.cfg.k)
        if arch == "jumprelu":
            return JumpReLU.apply(pre, self.log_threshold.exp(), self.cfg.jumprelu_bandwidth)
        if self.training:  # batchtopk
            return batch_topk_relu(pre, self.cfg.k)
        return torch.relu(pre) * (pre > self.threshold)

    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """Latent activations of ``x`` (raw activation units in)."""
        return self.activate(self.encode_pre(x))

    def decode(self, latents: Float[Tensor, "... d_sae"], x: Tensor | None = None) -> Float[Tensor, "... d_out"]:
        """Output from latents; a skip transcoder also needs its input ``x``."""
        out = latents.to(self.W_dec.dtype) @ self.W_dec + self.b_dec
        if self.W_skip is not None:
            if x is None:
                raise ValueError("a transcoder with a skip connection decodes from latents and its input x")
            out = out + (x.to(self.W_skip.dtype) * self.input_scale) @ self.W_skip
        return out / self.output_scale

    def forward(self, x: Float[Tensor, "... d_in"]) -> SAEOutput:
        pre = self.encode_pre(x)
        latents = self.activate(pre)
        return SAEOutput(output=self.decode(latents, x), latents=latents, pre_acts=pre)

    # ----------------------------------------------------------------- helpers
    @property
    def thresholds(self) -> Float[Tensor, "d_sae"] | None:
        """Per-latent thresholds at inference (jumprelu, batchtopk), else None."""
        if self.cfg.architecture == "jumprelu":
            return self.log_threshold.exp()
        if self.cfg.architecture == "batchtopk":
            return self.threshold.expand(self.cfg.d_sae)
        return None

    @torch.no_grad()
    def fold_scales(self) -> None:
        """Fold ``input_scale``/``output_scale`` into the weights: the same latents and the
        same output from raw activations, with both scales back at 1 (what is saved).

        With s_in, s_out: pre = (s_in·x − b_dec)·W_enc + b_enc and out = (f·W_dec + b_dec)/s_out
        (transcoders: no b_dec in pre, and + s_in·x·W_skip in out) become the same maps with
        W_enc·s_in, W_dec/s_out, b_dec/s_out, W_skip·s_in/s_out and, for autoencoders,
        b_enc + (s_in/s_out − 1)·b_dec·W_enc.
        """
        s_in, s_out = float(self.input_scale), float(self.output_scale)
        if not self.cfg.is_transcoder:
            self.b_enc += (s_in / s_out - 1.0) * (self.b_dec @ self.W_enc)
        self.W_enc *= s_in
        self.W_dec /= s_out
        self.b_dec /= s_out
        if self.W_skip is not None:
            self.W_skip *= s_in / s_out
        self.input_scale.fill_(1.0)
        self.output_scale.fill_(1.0)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Scale every decoder row to unit norm, compensating in the encoder (latents scale
        by the old norms). Outputs stay the same for ``relu`` and ``jumprelu``; for top-k
        selections, rescaled pre-activations can change which latents win, which is why
        those keep their decoder at unit norm throughout training instead."""
        norms = self.W_dec.norm(dim=1).clamp(min=1e-12)
        self.W_dec /= norms[:, None]
        self.W_enc *= norms[None, :]
        self.b_enc *= norms
        if self.cfg.architecture == "jumprelu":
            self.log_threshold += norms.log()


def topk_relu(pre: Float[Tensor, "... d_sae"], k: int) -> Float[Tensor, "... d_sae"]:
    """Each row's k largest pre-activations, ReLU'd; every other latent is 0."""
    values, indices = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))


def batch_topk_relu(pre: Float[Tensor, "batch d_sae"], k: int) -> Float[Tensor, "batch d_sae"]:
    """The k·batch largest ReLU'd pre-activations of the whole batch; every other is 0."""
    flat = torch.relu(pre).flatten()
    n_keep = min(k * pre.shape[0] if pre.dim() > 1 else k, flat.numel())
    values, indices = flat.topk(n_keep, sorted=False)
    return torch.zeros_like(flat).scatter(0, indices, values).view_as(pre)


class JumpReLU(torch.autograd.Function):
    """f = pre · H(pre − θ), with the threshold's gradient estimated straight through a
    rectangle kernel of width ε (Rajamanoharan et al. 2024):

        ∂f/∂θ ≈ −(θ/ε) · K((pre − θ)/ε),   K(u) = 1 for |u| < 1/2.

    The gradient to ``pre`` is H(pre − θ), as for a gated identity.
    """

    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold)

    @staticmethod
    def backward(ctx, grad: Tensor):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad * (pre > threshold)
        kernel = ((pre - threshold).abs() < eps / 2).to(grad.dtype)
        grad_threshold = -(threshold / eps) * kernel * grad
        return grad_pre, grad_threshold.reshape(-1, threshold.shape[-1]).sum(0), None


class Step(torch.autograd.Function):
    """H(pre − θ): the L0 count of a JumpReLU, with ∂/∂θ ≈ −(1/ε)·K((pre − θ)/ε)."""

    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = ((pre - threshold).abs() < eps / 2).to(grad.dtype)
        grad_threshold = -(1.0 / eps) * kernel * grad
        return torch.zeros_like(pre), grad_threshold.reshape(-1, threshold.shape[-1]).sum(0), None
