"""Superposition meets dictionary learning: an SAE recovers the toy's true features.

A toy model that stores ``n`` sparse features in ``m < n`` dimensions writes each sample as
a sparse sum of ``n`` known directions (the columns of ``W``). A sparse autoencoder trained
on those hidden vectors alone, never told ``W``, should find the same directions: that is
the bet behind using SAEs on language models (Elhage et al. 2022; Bricken et al. 2023;
Sharkey et al. 2022 made this check on a similar toy)::

    run = train_superposition(sae_recovery_config())
    recovery = analyse_sae_recovery(run)
    recovery.mean_max_cosine          # ≥ 0.9: each true feature has a latent pointing its way
    recovery.control_mean_max_cosine  # the same score for random unit directions

The SAE is :mod:`mechscope.sae`'s (``SAEConfig``, ``train_sae`` over a ``TensorSource``
of hidden activations), trained on fresh samples drawn exactly as the toy's training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.errors import InputError
from mechscope.results import Result
from mechscope.sae import SAEConfig, train_sae
from mechscope.activations.source import TensorSource
from mechscope.sae.train_config import TrainConfig
from mechscope.toys.superposition import SuperpositionConfig, SuperpositionTraining, feature_batch
from mechscope.toys.superposition_analysis import REPRESENTED


def sae_recovery_config(quick: bool = False) -> SuperpositionConfig:
    """32 equally important features in 8 dimensions, each active 5% of the time."""
    return SuperpositionConfig(n_features=32, n_hidden=8, sparsities=(0.95,), n_seeds=1,
                               steps=2000 if quick else 8000, lr=3e-3)


@dataclass(frozen=True)
class SAERecovery(Result):
    """How well an SAE's decoder directions match the toy's true feature directions."""

    max_cosine: Float[Tensor, "feature"]
    """Per represented true feature: the largest cosine with any SAE decoder direction."""
    mean_max_cosine: float
    """Mean of ``max_cosine`` (Sharkey et al.'s "mean max cosine similarity")."""
    control_mean_max_cosine: float
    """The same score for as many random unit directions as the SAE has latents."""
    cosines: Float[Tensor, "feature latent"]
    """Cosine of every represented feature with every latent's decoder direction."""
    n_represented: int
    """True features with ``||W_i|| > REPRESENTED`` (the only ones a hidden-layer SAE can see)."""
    n_features: int
    """Features of the toy."""
    n_hidden: int
    """Its hidden dimensions (the SAE's input width)."""
    d_sae: int
    """SAE latents."""
    k: int
    """TopK's k."""
    fvu: float
    """Fraction of the hidden activations' variance the SAE leaves unexplained (fresh samples)."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        fig = Fig(figsize=(11, 4.2))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
        order = self.cosines.argmax(-1).argsort()
        matched = self.cosines[order]
        latent_order = [int(i) for i in matched.argmax(-1)]
        rest = [i for i in range(matched.shape[1]) if i not in latent_order]
        seen: list[int] = []
        for i in latent_order + rest:
            if i not in seen:
                seen.append(i)
        image = ax1.imshow(matched[:, seen].numpy(), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        ax1.set_xlabel("SAE latent (matched first)"), ax1.set_ylabel("true feature")
        ax1.set_title(f"cosine: {self.n_represented} true features × {self.d_sae} SAE decoder directions")
        fig.colorbar(image, ax=ax1, fraction=0.04)
        bins = np.linspace(0, 1, 21)
        ax2.hist(self.max_cosine.numpy(), bins=bins, color="tab:blue", label=f"SAE (mean {self.mean_max_cosine:.3f})")
        ax2.axvline(self.control_mean_max_cosine, color="tab:orange", ls="--",
                    label=f"random directions (mean {self.control_mean_max_cosine:.3f})")
        ax2.set_xlabel("max cosine with any latent"), ax2.set_ylabel("true features")
        ax2.set_title(f"{self.n_features} features in {self.n_hidden} dims")
        ax2.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        return fig


def analyse_sae_recovery(run: SuperpositionTraining, *, instance: int = 0, d_sae: int | None = None,
                         k: int | None = None, n_samples: int = 200_000, steps: int = 3000,
                         seed: int = 0) -> SAERecovery:
    """Train a TopK SAE on the hidden activations of one instance and match its decoder to ``W``.

    ``d_sae`` defaults to the number of features, ``k`` to the expected number of active
    features per sample rounded up, plus one. Only samples with some active feature are used.
    """
    config: SuperpositionConfig = run.config
    if not 0 <= instance < config.n_instances:
        raise InputError(f"instance must be in 0 .. {config.n_instances - 1}; received {instance}")
    sparsity = config.sparsities[instance]
    d_sae = d_sae or config.n_features
    k = k or int(np.ceil(config.n_features * (1 - sparsity))) + 1
    W = run.W[instance]  # (hidden, feature)
    generator = torch.Generator().manual_seed(seed + 7)
    x = feature_batch(n_samples, torch.tensor([sparsity]), config.n_features, generator=generator)[:, 0]
    x = x[(x > 0).any(-1)]
    hidden = x @ W.T
    sae_config = SAEConfig(d_in=config.n_hidden, d_sae=d_sae, architecture="topk", k=k)
    trained = train_sae(sae_config, TensorSource(hidden), TrainConfig(total_steps=steps, batch_size=1024, lr=3e-3,
                                                                       seed=seed), progress=False).sae
    with torch.no_grad():
        out = trained(hidden).output
        fvu = float(((out - hidden) ** 2).sum() / ((hidden - hidden.mean(0)) ** 2).sum())
        decoder = trained.W_dec / trained.W_dec.norm(dim=-1, keepdim=True)  # (latent, hidden)
    represented = W.norm(dim=0) > REPRESENTED
    true = (W[:, represented] / W[:, represented].norm(dim=0)).T  # (feature, hidden)
    cosines = true @ decoder.T
    random = torch.randn(d_sae, config.n_hidden, generator=torch.Generator().manual_seed(seed + 11))
    random = random / random.norm(dim=-1, keepdim=True)
    control = float((true @ random.T).max(-1).values.mean())
    best = cosines.max(-1).values
    return SAERecovery(max_cosine=best, mean_max_cosine=float(best.mean()), control_mean_max_cosine=control,
                       cosines=cosines, n_represented=int(represented.sum()), n_features=config.n_features,
                       n_hidden=config.n_hidden, d_sae=d_sae, k=k, fvu=fvu)
