"""What a sparse dictionary is: its shape, its activation function, and where it reads.

    cfg = SAEConfig(d_in=576, d_sae=4608, architecture="topk", k=32,
                    hook_name="blocks.15.hook_resid_post", model_name="smollm2-135m")
    transcoder = SAEConfig(d_in=576, d_sae=4608, architecture="topk", k=32, d_out=576, skip=True,
                           hook_name="blocks.15.ln2.hook_out", hook_name_out="blocks.15.hook_mlp_out")

Architectures (Bricken et al. 2023; Gao et al. 2024; Bussmann et al. 2024;
Rajamanoharan et al. 2024):

* ``relu``: f = ReLU(pre); trained with an L1 penalty weighted by decoder norm;
* ``topk``: keep each token's k largest pre-activations (then ReLU);
* ``batchtopk``: keep the k·B largest over a batch of B tokens while training; at
  inference a single learned threshold (a JumpReLU with one θ for all latents);
* ``jumprelu``: f = pre · H(pre − θ_i) with a learned threshold per latent, trained
  through straight-through estimates and an L0 penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

from mechscope.errors import InputError

ARCHITECTURES = ("relu", "topk", "batchtopk", "jumprelu")
DEFAULT_K = 32
"""``k`` of a ``topk``/``batchtopk`` dictionary when none is given (``mechscope sae train``)."""
DEFAULT_EXPANSION = 8
"""Latents per input dimension (``d_sae = 8 · d_in``) when no width is given."""


@dataclass(frozen=True, kw_only=True)
class SAEConfig:
    """The shape and kind of a sparse autoencoder or transcoder."""

    d_in: int
    """Width of the activations it reads."""
    d_sae: int
    """Number of latents (the dictionary's size)."""
    architecture: str = "topk"
    """One of :data:`ARCHITECTURES`."""
    k: int | None = None
    """``topk``/``batchtopk``: latents kept per token (on average, for ``batchtopk``)."""
    d_out: int | None = None
    """Transcoders: width of what it predicts. None: an autoencoder (it predicts its input)."""
    skip: bool = False
    """Transcoders: add a linear skip connection from input to output."""
    jumprelu_bandwidth: float = 0.001
    """``jumprelu``: width of the rectangle kernel in the threshold's straight-through gradient."""
    jumprelu_init_threshold: float = 0.001
    """``jumprelu``: initial threshold of every latent."""
    hook_name: str | None = None
    """The hook point it reads (e.g. ``blocks.15.hook_resid_post``); needed to splice it in."""
    hook_name_out: str | None = None
    """Transcoders: the hook point it predicts (e.g. ``blocks.15.hook_mlp_out``)."""
    model_name: str | None = None
    """The model whose activations it was trained on."""

    def __post_init__(self) -> None:
        for field in ("d_in", "d_sae"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"SAEConfig.{field} must be a positive integer; received {value!r}")
        if self.architecture not in ARCHITECTURES:
            raise InputError(
                f"SAEConfig.architecture must be one of {', '.join(ARCHITECTURES)}; received {self.architecture!r}"
            )
        if self.architecture in ("topk", "batchtopk"):
            if not isinstance(self.k, int) or not 1 <= self.k <= self.d_sae:
                raise InputError(
                    f"SAEConfig.k must be an integer in 1..d_sae ({self.d_sae}) for {self.architecture}; received {self.k!r}"
                )
        elif self.k is not None:
            raise InputError(f"SAEConfig.k applies to topk and batchtopk only; {self.architecture} takes k=None")
        if self.d_out is not None and (not isinstance(self.d_out, int) or self.d_out < 1):
            raise InputError(f"SAEConfig.d_out must be a positive integer or None; received {self.d_out!r}")
        if self.skip and self.d_out is None:
            raise InputError("SAEConfig.skip is for transcoders; set d_out too (or skip=False)")
        if self.hook_name_out is not None and self.d_out is None:
            raise InputError("SAEConfig.hook_name_out is for transcoders; set d_out too")
        if self.jumprelu_bandwidth <= 0 or self.jumprelu_init_threshold <= 0:
            raise InputError("SAEConfig.jumprelu_bandwidth and jumprelu_init_threshold must be positive")

    @property
    def is_transcoder(self) -> bool:
        return self.d_out is not None

    @property
    def output_width(self) -> int:
        """Width of what it reconstructs or predicts."""
        return self.d_in if self.d_out is None else self.d_out
