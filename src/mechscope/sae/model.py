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

import warnings
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
        self.W_enc = nn.Parameter(decoder.T.contiguous() if d_out == d_in else torch.randn(d_in, d_sae, **kw) / d_in**0.5)
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


def batch_topk_relu(pre: Float[Tensor, "... d_sae"], k: int) -> Float[Tensor, "... d_sae"]:
    """The k·tokens largest ReLU'd pre-activations of the whole batch (every leading
    dimension counts as tokens: batch × pos too); every other is 0."""
    flat = torch.relu(pre).flatten()
    n_keep = min(k * (pre.numel() // pre.shape[-1]), flat.numel())
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


# ------------------------------------------------------------------ sparse kernels
# A TopK dictionary keeps k of d_sae latents per token, so a dense (batch × d_sae)
# latent matrix is >99% zeros. The kernels below touch only the kept (token, latent)
# pairs: decoding is an embedding-bag over decoder rows, and the encoder's and decoder's
# weight gradients are sparse (d_sae × batch) @ dense products. Only the encoder's
# forward product stays dense: every pre-activation is needed to know which win.


@dataclass(frozen=True)
class SparseLatents:
    """The kept latents of a batch as (token, latent) pairs, grouped by token in order."""

    rows: Tensor
    """Token (row) of each pair, non-decreasing."""
    cols: Tensor
    """Latent of each pair."""
    offsets: Tensor
    """Index in ``rows`` where each token's pairs begin (one per token)."""
    n_rows: int
    """Tokens in the batch."""
    n_cols: int
    """Latents (d_sae)."""

    @property
    def latent_token_pairs(self) -> Tensor:
        """(2, nnz) indices (latent, token): the transposed pattern the gradients use."""
        return torch.stack([self.cols, self.rows])

    @classmethod
    def from_topk(cls, indices: Tensor, n_cols: int) -> SparseLatents:
        """From each row's ``topk`` indices (batch k)."""
        n_rows, k = indices.shape
        rows = torch.arange(n_rows, device=indices.device).repeat_interleave(k)
        offsets = torch.arange(0, n_rows * k, k, device=indices.device)
        return cls(rows=rows, cols=indices.reshape(-1), offsets=offsets, n_rows=n_rows, n_cols=n_cols)

    @classmethod
    def from_flat(cls, flat: Tensor, n_rows: int, n_cols: int) -> SparseLatents:
        """From flat indices ``row * n_cols + col`` (any order; sorted here)."""
        flat = flat.sort().values
        rows = flat // n_cols
        counts = torch.bincount(rows, minlength=n_rows)
        offsets = torch.cumsum(counts, 0) - counts
        return cls(rows=rows, cols=flat % n_cols, offsets=offsets, n_rows=n_rows, n_cols=n_cols)


def batch_topk_indices(acts: Float[Tensor, "batch d_sae"], k: int, candidates: int = 4) -> Tensor:
    """Flat indices of the k·batch largest entries of ``acts`` (ReLU'd: >= 0), skipping zeros.

    Same set as one topk over the flattened batch (:func:`batch_topk_relu`), found faster:
    each row's ``candidates·k`` largest first, then the global top among those. That is
    exact whenever every row's smallest candidate is below the global cut (or is 0, so
    nothing it hides could count); otherwise it falls back to the full flattened topk.
    """
    n_rows, n_cols = acts.shape
    n_keep = min(k * n_rows, acts.numel())
    per_row = min(n_cols, candidates * k)
    values, cols = acts.topk(per_row, dim=-1, sorted=False)
    kept_values, kept = values.flatten().topk(n_keep, sorted=False)
    cut = kept_values.min()
    row_floor = values.min(dim=-1).values
    if per_row < n_cols and not bool(((row_floor < cut) | (row_floor <= 0)).all()):
        kept_values, flat = acts.flatten().topk(n_keep, sorted=False)
    else:
        rows = torch.div(kept, per_row, rounding_mode="floor")
        flat = rows * n_cols + cols.flatten()[kept]
    return flat[kept_values > 0]


class GatherPreacts(torch.autograd.Function):
    """``pre[rows, cols]`` for pre = x @ W_enc + bias, given ``pre`` computed without a graph.

    Backward sends gradient to ``W_enc`` and ``bias`` through the chosen pairs only:
    W_enc's gradient is xᵀ·G with G the sparse (token × latent) gradient, a product of
    nnz·d_in multiply-adds instead of batch·d_in·d_sae. ``x`` is data (no gradient).
    """

    @staticmethod
    def forward(ctx, pre: Tensor, x: Tensor, W_enc: Tensor, bias: Tensor, sparse: SparseLatents) -> Tensor:
        ctx.save_for_backward(x)
        ctx.sparse = sparse
        return pre[sparse.rows, sparse.cols]

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        sp = ctx.sparse
        grad_w = grad_bias = None
        if ctx.needs_input_grad[2]:
            latent_by_token = _coo(sp.latent_token_pairs, grad, (sp.n_cols, sp.n_rows))
            grad_w = torch.sparse.mm(latent_by_token, x.to(grad.dtype)).T
        if ctx.needs_input_grad[3]:
            grad_bias = grad.new_zeros(sp.n_cols).index_add_(0, sp.cols, grad)
        return None, None, grad_w, grad_bias, None


class SparseDecode(torch.autograd.Function):
    """Σ values · W_dec[cols] per token: an embedding-bag over decoder rows (no bias).

    Backward: each value's gradient is ⟨W_dec[col], grad[row]⟩, a dense-dense product
    sampled at the kept pairs; W_dec's gradient is the sparse (latent × token) matrix of
    values times the output gradient.
    """

    @staticmethod
    def forward(ctx, values: Tensor, W_dec: Tensor, sparse: SparseLatents) -> Tensor:
        ctx.save_for_backward(values, W_dec)
        ctx.sparse = sparse
        return torch.nn.functional.embedding_bag(
            sparse.cols, W_dec, sparse.offsets, mode="sum", per_sample_weights=values
        )

    @staticmethod
    def backward(ctx, grad: Tensor):
        values, W_dec = ctx.saved_tensors
        sp = ctx.sparse
        grad_values = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_values = _sampled_row_dots(grad, W_dec, sp)
        if ctx.needs_input_grad[1]:
            grad_w = torch.sparse.mm(_coo(sp.latent_token_pairs, values, (sp.n_cols, sp.n_rows)), grad)
        return grad_values, grad_w, None


def _coo(indices: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False)


def _sampled_row_dots(grad: Tensor, W_dec: Tensor, sp: SparseLatents) -> Tensor:
    """⟨grad[rows_i], W_dec[cols_i]⟩ for every pair i."""
    if grad.dtype in (torch.float32, torch.float64):
        crow = torch.cat([sp.offsets, sp.offsets.new_tensor([sp.rows.numel()])])
        with warnings.catch_warnings():  # "sparse CSR support is in beta": sampled_addmm is what we need
            warnings.simplefilter("ignore", UserWarning)
            mask = torch.sparse_csr_tensor(crow, sp.cols, grad.new_zeros(sp.rows.numel()), (sp.n_rows, sp.n_cols),
                                           check_invariants=False)
        return torch.sparse.sampled_addmm(mask, grad, W_dec.T, beta=0.0).values()
    # sampled_addmm covers float32/float64 only; chunks keep the gathered rows small
    out = grad.new_empty(sp.rows.numel())
    for start in range(0, sp.rows.numel(), 1 << 15):
        end = start + (1 << 15)
        out[start:end] = (W_dec[sp.cols[start:end]] * grad[sp.rows[start:end]]).sum(-1)
    return out
