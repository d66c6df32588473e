"""Elhage et al. (2022)'s superposition findings, reproduced from trained ReLU output models.

* :func:`analyse_geometry` (their fig. 2-3): five features in two dimensions. Dense: the
  two most important features get orthogonal directions and the rest are dropped; sparse:
  all five share the plane as a regular pentagon (adjacent directions 72° apart).
* :func:`analyse_phase_diagram` (fig. "phase change"): one extra feature of relative
  importance ``r`` beside a feature of importance 1, in one dimension: over density ×
  ``r``, the extra feature is not represented, gets the dimension to itself, or shares it
  in superposition (the two antipodal).
* :func:`analyse_dimensionality` (fig. "feature dimensionality"): 400 features into 30
  dimensions; dimensions per feature ``m / ||W||_F²`` over ``1 / (1 − S)`` sticks at 1, 1/2,
  2/5 ..., and each feature's dimensionality ``D_i = ||W_i||² / Σ_j (Ŵ_i · W_j)²``
  clusters at the fractions of small geometric configurations (1, 3/4, 2/3, 1/2, 2/5, 3/8, 1/3).

Each takes a :class:`~mechscope.toys.superposition.SuperpositionTraining` and returns a
Result with ``plot()``; the ``*_config`` functions give the paper's settings (``quick``:
smaller). The SAE link is :mod:`mechscope.toys.superposition_sae`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.results import Result
from mechscope.toys.superposition import SuperpositionConfig, SuperpositionTraining

REPRESENTED = 0.5
"""A feature is represented when its direction's norm ``||W_i||`` exceeds this (trained
norms sit near 0 or near 1)."""
STICKY_FRACTIONS = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 1 / 3)
"""Feature dimensionalities of the small configurations Elhage et al. found (digon 1/2,
triangle 2/3, tetrahedron 3/4, pentagon 2/5, square antiprism 3/8 ...)."""
STICKY_TOLERANCE = 0.01
"""How near a fraction ``D_i`` must be to count as stuck there."""


# ------------------------------------------------------------------ (a) geometry
def geometry_config(quick: bool = False) -> SuperpositionConfig:
    """Five features (importance 0.9^i) in two dimensions at four sparsities."""
    return SuperpositionConfig(n_features=5, n_hidden=2, sparsities=(0.0, 0.7, 0.9, 0.97), importance_decay=0.9,
                               n_seeds=3, steps=3000 if quick else 6000, lr=1e-2)


@dataclass(frozen=True)
class Geometry(Result):
    """Where each feature points, per sparsity, for features in two dimensions."""

    sparsities: tuple[float, ...]
    """Sparsity of each instance."""
    W: Float[Tensor, "instance 2 feature"]
    """The trained directions."""
    norms: Float[Tensor, "instance feature"]
    """``||W_i||``."""
    n_represented: tuple[int, ...]
    """Features with ``||W_i|| > REPRESENTED``, per instance."""
    dense_cosine: float
    """Densest instance: |cos| between its two represented features (0: orthogonal; NaN if not two)."""
    sparse_gaps_degrees: tuple[float, ...]
    """Sparsest instance: angles between adjacent represented directions, sorted around the circle."""
    is_pentagon: bool
    """Sparsest instance: all five represented and every gap within 10° of 72°."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        n = len(self.sparsities)
        fig = Fig(figsize=(2.7 * n, 5.4))
        axes = fig.subplots(2, n)
        colours = [(0.15 + 0.7 * i / (self.W.shape[-1] - 1), 0.2, 0.55) for i in range(self.W.shape[-1])]
        for k, s in enumerate(self.sparsities):
            ax = axes[0, k]
            for i, colour in enumerate(colours):
                x, y = self.W[k, :, i].tolist()
                ax.plot([0, x], [0, y], color=colour, lw=2)
                ax.plot([x], [y], "o", color=colour)
            ax.set_xlim(-1.4, 1.4), ax.set_ylim(-1.4, 1.4), ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"S = {s:g}: {self.n_represented[k]} of {self.W.shape[-1]}", fontsize=10)
            gram = (self.W[k].T @ self.W[k]).numpy()
            axes[1, k].imshow(gram, cmap="RdBu", vmin=-1.2, vmax=1.2)
            axes[1, k].set_xticks([]), axes[1, k].set_yticks([])
            axes[1, k].set_title("WᵀW", fontsize=9)
        fig.suptitle("5 features in 2 dimensions (importance 0.9^i, darker = more important)", fontsize=11)
        fig.tight_layout()
        return fig


def analyse_geometry(run: SuperpositionTraining) -> Geometry:
    """Angles and norms of features trained into two dimensions."""
    W = run.W
    norms = W.norm(dim=1)
    represented = norms > REPRESENTED
    dense = int(np.argmin(run.config.sparsities))
    kept = W[dense][:, represented[dense]]
    dense_cos = float("nan")
    if kept.shape[1] == 2:
        dense_cos = float((kept[:, 0] @ kept[:, 1]).abs() / (kept[:, 0].norm() * kept[:, 1].norm()))
    sparse = int(np.argmax(run.config.sparsities))
    directions = W[sparse][:, represented[sparse]]
    angles = sorted(math.degrees(math.atan2(y, x)) % 360 for x, y in directions.T.tolist())
    gaps = tuple(((b - a) % 360) for a, b in zip(angles, angles[1:] + angles[:1])) if len(angles) > 1 else ()
    pentagon = len(angles) == 5 and all(abs(g - 72) < 10 for g in gaps)
    return Geometry(sparsities=run.config.sparsities, W=W, norms=norms,
                    n_represented=tuple(int(r) for r in represented.sum(-1)), dense_cosine=dense_cos,
                    sparse_gaps_degrees=gaps, is_pentagon=pentagon)


# ------------------------------------------------------------- (b) phase diagram
PHASES = ("not represented", "dedicated dimension", "superposition")
"""What the extra feature of the phase diagram does, in that order (0, 1, 2)."""


def phase_config(quick: bool = False) -> SuperpositionConfig:
    """Two features in one dimension over a grid of density × relative importance (row-major: importance outer)."""
    n = 8 if quick else 16
    importance = np.logspace(-1, 1, n)
    density = np.logspace(0, -2, n)
    sparsities, importances = [], []
    for r in importance:
        for d in density:
            sparsities.append(float(1 - d))
            importances.append((1.0, float(r)))
    return SuperpositionConfig(n_features=2, n_hidden=1, sparsities=tuple(sparsities), importances=tuple(importances),
                               n_seeds=3, steps=2000 if quick else 4000, batch_size=1024 if quick else 256, lr=1e-2)


@dataclass(frozen=True)
class PhaseDiagram(Result):
    """The extra feature's fate over feature density × its relative importance."""

    density: tuple[float, ...]
    """Feature density ``1 − S`` (columns)."""
    relative_importance: tuple[float, ...]
    """The extra feature's importance relative to the first (rows)."""
    phase: list[list[int]]
    """Row-major ``PHASES`` index per (importance, density) cell."""
    antipodal: float
    """Share of superposition cells whose two directions point opposite ways (W₁·W₂ < 0)."""

    def counts(self) -> dict[str, int]:
        flat = [p for row in self.phase for p in row]
        return {name: flat.count(i) for i, name in enumerate(PHASES)}

    def plot(self) -> Figure:
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure as Fig
        from matplotlib.patches import Patch

        fig = Fig(figsize=(6.2, 4.8))
        ax = fig.add_subplot()
        colours = ["#d9d9d9", "#4c72b0", "#dd8452"]
        d, r = np.array(self.density), np.array(self.relative_importance)
        ax.pcolormesh(_edges(d), _edges(r), np.array(self.phase), cmap=ListedColormap(colours), vmin=-0.5, vmax=2.5)
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("feature density 1 − S (sparser →)")
        ax.set_ylabel("relative importance of the extra feature")
        ax.set_title("2 features in 1 dimension: the extra feature is …")
        ax.legend(handles=[Patch(color=c, label=p) for c, p in zip(colours, PHASES)], loc="upper left", fontsize=8)
        fig.tight_layout()
        return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges between log-spaced centres."""
    logs = np.log10(centres)
    mids = (logs[1:] + logs[:-1]) / 2
    return 10 ** np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]])


def analyse_phase_diagram(run: SuperpositionTraining) -> PhaseDiagram:
    """Classify each cell of a :func:`phase_config` run."""
    importance = sorted({row[1] for row in run.config.importances})
    density = sorted({1 - s for s in run.config.sparsities}, reverse=True)
    w = run.W[:, 0, :]  # (cell, feature)
    first, extra = w[:, 0].abs() > REPRESENTED, w[:, 1].abs() > REPRESENTED
    phase = torch.where(extra & first, 2, torch.where(extra, 1, 0))
    both = extra & first
    antipodal = float(((w[:, 0] * w[:, 1]) < 0)[both].float().mean()) if both.any() else float("nan")
    grid = phase.view(len(importance), len(density)).tolist()
    return PhaseDiagram(density=tuple(density), relative_importance=tuple(importance), phase=grid, antipodal=antipodal)


# ---------------------------------------------------------- (c) dimensionality
def dimensionality_config(quick: bool = False) -> SuperpositionConfig:
    """400 features (uniform importance) into 30 dimensions over ``1 / (1 − S)`` from 1 to 30, where
    the sticky fractions live (Elhage et al.'s notebook: 1 to 20); quick: 100 into 10, fewer steps."""
    n, m, k, top = (100, 10, 10, 10) if quick else (400, 30, 30, 30)
    inverse_density = np.logspace(0, math.log10(top), k)
    return SuperpositionConfig(n_features=n, n_hidden=m, sparsities=tuple(float(1 - 1 / x) for x in inverse_density),
                               n_seeds=1, steps=3000 if quick else 10_000, batch_size=256, lr=1e-3)


@dataclass(frozen=True)
class Dimensionality(Result):
    """Dimensions per feature and each feature's dimensionality, over sparsity."""

    inverse_density: tuple[float, ...]
    """``1 / (1 − S)`` per instance."""
    dims_per_feature: tuple[float, ...]
    """``m / ||W||_F²`` per instance."""
    feature_dimensionality: Float[Tensor, "instance feature"]
    """``D_i`` of every feature (0 for features not represented)."""
    near_sticky: float
    """Share of represented features whose ``D_i`` is within ``STICKY_TOLERANCE`` of a sticky fraction, over the
    instances in the sticky regime (dimensions per feature between 0.3 and 0.95: past the dense
    instances, whose ``D_i`` are 1 trivially, and before ``m / n``, where no small configuration fits)."""
    near_sticky_uniform: float
    """The same share for values uniform over [0.3, 1] (the control: no preference for the fractions)."""
    n_hidden: int
    """Hidden dimensions ``m``."""
    n_features: int
    """Features ``n``."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        fig = Fig(figsize=(7.5, 4.6))
        ax = fig.add_subplot()
        x = np.array(self.inverse_density)
        D = self.feature_dimensionality.numpy()
        for k, xi in enumerate(x):
            kept = D[k][D[k] > 0.05]
            ax.scatter(np.full(len(kept), xi) * np.exp(np.random.default_rng(k).normal(0, 0.03, len(kept))), kept,
                       s=4, alpha=0.25, color="tab:blue", lw=0)
        ax.plot(x, self.dims_per_feature, "k-", lw=2, label="m / ‖W‖²_F (dimensions per feature)")
        for f, name in zip(STICKY_FRACTIONS, ("1", "3/4", "2/3", "1/2", "2/5", "3/8", "1/3")):
            ax.axhline(f, color="grey", lw=0.6, ls="--")
            ax.text(x[-1] * 1.15, f, name, va="center", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("1 / (1 − S)")
        ax.set_ylabel("dimensions per feature; dots: each feature's D_i")
        ax.set_ylim(0, 1.1)
        ax.set_title(f"{self.n_features} features in {self.n_hidden} dimensions")
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        return fig


def feature_dimensionality(W: Float[Tensor, "instance hidden feature"]) -> Float[Tensor, "instance feature"]:
    """``D_i = ||W_i||² / Σ_j (Ŵ_i · W_j)²`` (0 where ``||W_i|| ≤ REPRESENTED``)."""
    norms = W.norm(dim=1, keepdim=True)
    unit = W / norms.clamp_min(1e-9)
    overlaps = torch.einsum("ihf,ihg->ifg", unit, W) ** 2  # (Ŵ_i · W_j)²
    D = norms.squeeze(1) ** 2 / overlaps.sum(-1)
    return torch.where(norms.squeeze(1) > REPRESENTED, D, torch.zeros_like(D))


def analyse_dimensionality(run: SuperpositionTraining) -> Dimensionality:
    """Dimensions per feature and ``D_i`` per instance of a :func:`dimensionality_config` run."""
    config = run.config
    inverse = tuple(1 / (1 - s) for s in config.sparsities)
    per_feature = tuple(float(config.n_hidden / (run.W[k] ** 2).sum()) for k in range(len(inverse)))
    D = feature_dimensionality(run.W)
    regime = torch.tensor([0.3 <= d <= 0.95 for d in per_feature])
    values = D[regime][D[regime] > 0]
    sticky = torch.tensor(STICKY_FRACTIONS)
    near_fn = lambda x: float(((x.unsqueeze(-1) - sticky).abs().min(-1).values < STICKY_TOLERANCE).float().mean())  # noqa: E731
    near = near_fn(values) if len(values) else 0.0
    near_uniform = near_fn(torch.linspace(0.3, 1.0, 10_001))
    return Dimensionality(inverse_density=inverse, dims_per_feature=per_feature, feature_dimensionality=D,
                          near_sticky=near, near_sticky_uniform=near_uniform, n_hidden=config.n_hidden,
                          n_features=config.n_features)
