"""How to train a sparse dictionary: :class:`TrainConfig` and its schedules.

Every field is one documented training choice (length, Adam, the learning-rate and
sparsity-coefficient schedules, AuxK, the decoder-bias initialisation, activation
normalisation, a unit-norm decoder, checkpoints). :func:`learning_rate` and
:func:`sparsity_scale` give the schedules' value at a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mechscope.errors import InputError, check_int

B_DEC_INITS = ("geometric_median", "mean", "zeros")
DEFAULT_PASSES = 4
"""Passes over an activation store when no training length is given (``mechscope sae train``)."""
RESUMABLE_CHECKPOINT_EVERY = 500
"""Steps between checkpoints of a run that promises to resume (``mechscope sae train``);
``TrainConfig.checkpoint_every`` itself defaults to None: only at the end."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train: length, optimiser, schedules, sparsity terms and training tricks."""

    total_steps: int | None = None
    """Optimiser steps. Give this or ``total_tokens``, not both."""
    total_tokens: int | None = None
    """Training tokens; steps = ceil(total_tokens / batch_size)."""
    batch_size: int = 4096
    """Tokens per step."""
    lr: float = 3e-4
    """Adam's peak learning rate."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam's β1, β2."""
    adam_eps: float = 1e-8
    """Adam's ε."""
    lr_warmup_steps: int = 0
    """Steps of linear learning-rate warmup from 0 to ``lr``."""
    lr_decay_fraction: float = 0.2
    """Final fraction of the steps over which the learning rate decays linearly to 0
    (Anthropic's April 2024 recipe uses 0.2); 0: constant after warmup."""
    l1_coefficient: float = 5.0
    """``relu``: weight of the L1 penalty Σ f_i·‖W_dec,i‖ (per token, averaged)."""
    l0_coefficient: float = 1.0
    """``jumprelu``: weight of the L0 penalty (latents above threshold per token)."""
    sparsity_warmup_steps: int = 0
    """Steps over which the L1/L0 coefficient ramps linearly from 0 to its value."""
    aux_k: int | None = None
    """``topk``/``batchtopk``: dead latents used by the AuxK loss per token; None: half
    the output width (Gao et al.'s heuristic)."""
    aux_k_coefficient: float = 1.0
    """Weight of the AuxK loss (scaled by min(1, dead/aux_k), as SAELens); 0 turns it off."""
    dead_tokens_threshold: int = 10_000_000
    """A latent is dead once this many tokens have passed since it last fired."""
    batchtopk_threshold_lr: float = 0.01
    """``batchtopk``: rate of the running average of the smallest kept activation, the
    inference threshold (Bussmann et al. 2024); the first step sets it outright."""
    b_dec_init: str | None = "geometric_median"
    """Decoder bias at the start: one of :data:`B_DEC_INITS` of the first batches
    (targets, for a transcoder); None keeps the SAE's own."""
    normalize_activations: bool = True
    """Scale inputs (and targets) so their mean squared norm is their width, estimated on
    the first ``init_batches`` batches; stored in ``input_scale``/``output_scale``."""
    init_batches: int = 4
    """Batches read at the start to estimate the scales and the decoder bias."""
    unit_norm_decoder: bool = True
    """Keep decoder rows at unit norm: remove each row's gradient component along the row
    before the step, renormalise after it."""
    seed: int = 0
    """Initialisation (when given a config) and data order (epoch e uses seed + e)."""
    checkpoint_every: int | None = None
    """Save a checkpoint every this many steps (with ``checkpoint_dir``); None: only at the end."""
    keep_checkpoints: int = 2
    """Checkpoints kept in ``checkpoint_dir``; older ones are deleted."""

    def __post_init__(self) -> None:
        if (self.total_steps is None) == (self.total_tokens is None):
            raise InputError(
                "TrainConfig needs exactly one of total_steps and total_tokens; "
                f"received total_steps={self.total_steps!r}, total_tokens={self.total_tokens!r}"
            )
        for name in ("total_steps", "total_tokens", "batch_size", "init_batches", "keep_checkpoints", "dead_tokens_threshold"):
            check_int(f"TrainConfig.{name}", getattr(self, name), minimum=1, optional=name.startswith("total"))
        for name in ("lr_warmup_steps", "sparsity_warmup_steps", "seed"):
            check_int(f"TrainConfig.{name}", getattr(self, name), minimum=0)
        check_int("TrainConfig.checkpoint_every", self.checkpoint_every, minimum=1, optional=True)
        check_int("TrainConfig.aux_k", self.aux_k, minimum=1, optional=True)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise InputError(f"TrainConfig.lr must be a positive number; received {self.lr!r}")
        for name in ("l1_coefficient", "l0_coefficient", "aux_k_coefficient"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) >= 0):
                raise InputError(f"TrainConfig.{name} must be a number >= 0; received {getattr(self, name)!r}")
        if not 0 <= self.lr_decay_fraction <= 1:
            raise InputError(f"TrainConfig.lr_decay_fraction must be in [0, 1]; received {self.lr_decay_fraction!r}")
        if not 0 < self.batchtopk_threshold_lr <= 1:
            raise InputError(f"TrainConfig.batchtopk_threshold_lr must be in (0, 1]; received {self.batchtopk_threshold_lr!r}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas) or self.adam_eps <= 0:
            raise InputError(f"TrainConfig.adam_betas must be two numbers in [0, 1) and adam_eps > 0; received {self.adam_betas!r}, {self.adam_eps!r}")
        if self.b_dec_init is not None and self.b_dec_init not in B_DEC_INITS:
            raise InputError(f"TrainConfig.b_dec_init must be one of {', '.join(B_DEC_INITS)} or None; received {self.b_dec_init!r}")

    @property
    def steps(self) -> int:
        """Optimiser steps of the whole run."""
        return self.total_steps if self.total_steps is not None else math.ceil(self.total_tokens / self.batch_size)



def learning_rate(config: TrainConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warmup, constant, linear decay."""
    total, lr = config.steps, config.lr
    if step < config.lr_warmup_steps:
        lr *= (step + 1) / config.lr_warmup_steps
    decay_steps = int(round(config.lr_decay_fraction * total))
    if decay_steps and step >= total - decay_steps:
        lr *= (total - step) / decay_steps
    return lr


def sparsity_scale(config: TrainConfig, step: int) -> float:
    """Factor on the L1/L0 coefficient at step ``step``: a linear ramp over ``sparsity_warmup_steps``."""
    return min(1.0, (step + 1) / config.sparsity_warmup_steps) if config.sparsity_warmup_steps else 1.0
