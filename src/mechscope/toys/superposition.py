"""Toy models of superposition (Elhage et al. 2022): more features than dimensions.

``n`` features, each zero with probability ``S`` (the *sparsity*) and else uniform in
[0, 1], are squeezed into ``m < n`` hidden dimensions and read back by the **ReLU output
model** ``x' = ReLU(WᵀW x + b)``, trained to minimise ``Σ_i I_i (x_i − x'_i)²`` with
feature importances ``I_i``. Dense features get the ``m`` most important dimensions to
themselves and the rest are dropped; sparse features are packed in superposition
(antipodal pairs, triangles, pentagons ...), because interference between features that
are rarely active together costs little::

    from mechscope.toys.superposition import SuperpositionConfig, train_superposition

    config = SuperpositionConfig(n_features=5, n_hidden=2, sparsities=(0.0, 0.7, 0.9), importance_decay=0.9)
    run = train_superposition(config)      # one instance per sparsity, trained together
    run.model.W[2]                         # (n_hidden, n_features): the sparse instance's five directions

Many *instances* (one per sparsity or importance setting, times ``n_seeds`` restarts)
train at once as one batched model: plain torch, no transformer. Each instance keeps the
restart with the lowest final loss (the loss has local minima; Elhage et al. did the same).
:mod:`mechscope.toys.superposition_analysis` reproduces the paper's figures from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError
from mechscope.results import Result
from mechscope.toys.training import checkpoint_directory, resumable_training, torch_threads


@dataclass(frozen=True, kw_only=True)
class SuperpositionConfig:
    """Instances of the ReLU output model and their training."""

    n_features: int
    """Input features ``n``."""
    n_hidden: int
    """Hidden dimensions ``m``."""
    sparsities: tuple[float, ...]
    """Per instance, the probability that a feature is zero."""
    importances: tuple[tuple[float, ...], ...] | None = None
    """Per instance, each feature's importance (None: ``importance_decay ** i`` for every instance)."""
    importance_decay: float = 1.0
    """Importance of feature ``i`` is ``importance_decay ** i`` unless ``importances`` is given."""
    n_seeds: int = 1
    """Restarts per instance (the lowest final loss is kept)."""
    steps: int = 10_000
    """Adam steps."""
    batch_size: int = 1024
    """Feature vectors per step (fresh every step)."""
    lr: float = 1e-3
    """Adam's learning rate (cosine decay to zero)."""
    seed: int = 0
    """Seeds the weights and the data."""
    checkpoint_every: int = 2000
    """Steps between checkpoints (when checkpointed)."""
    threads: int | None = 1
    """torch threads while training."""

    def __post_init__(self) -> None:
        for name in ("n_features", "n_hidden", "n_seeds", "steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"SuperpositionConfig.{name} must be at least 1; received {getattr(self, name)}")
        if not self.sparsities or any(not 0 <= s < 1 for s in self.sparsities):
            raise InputError(f"SuperpositionConfig.sparsities must be non-empty, each in [0, 1); received {self.sparsities}")
        if self.importances is not None and (len(self.importances) != len(self.sparsities)
                                             or any(len(row) != self.n_features for row in self.importances)):
            raise InputError("SuperpositionConfig.importances must hold one row of n_features importances per sparsity")
        if not self.importance_decay > 0 or not self.lr > 0:
            raise InputError(f"SuperpositionConfig.importance_decay and lr must be positive; received "
                             f"{self.importance_decay}, {self.lr}")

    @property
    def n_instances(self) -> int:
        return len(self.sparsities)

    def importance_tensor(self) -> Float[Tensor, "instance feature"]:
        if self.importances is not None:
            return torch.tensor(self.importances, dtype=torch.float32)
        row = self.importance_decay ** torch.arange(self.n_features, dtype=torch.float32)
        return row.expand(self.n_instances, -1).clone()


class ReLUOutputModel(torch.nn.Module):
    """``x' = ReLU(Wᵀ W x + b)`` for many independent instances at once."""

    def __init__(self, n_instances: int, n_features: int, n_hidden: int, *, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        W = torch.empty(n_instances, n_hidden, n_features)
        for i in range(n_instances):  # Xavier normal, as in Elhage et al.'s notebook
            W[i] = torch.randn(n_hidden, n_features, generator=generator) * (2 / (n_hidden + n_features)) ** 0.5
        self.W = torch.nn.Parameter(W)
        """(instance, hidden, feature): column ``i`` is feature ``i``'s direction."""
        self.b = torch.nn.Parameter(torch.zeros(n_instances, n_features))

    def hidden(self, x: Float[Tensor, "batch instance feature"]) -> Float[Tensor, "batch instance hidden"]:
        return torch.einsum("ihf,bif->bih", self.W, x)

    def forward(self, x: Float[Tensor, "batch instance feature"]) -> Float[Tensor, "batch instance feature"]:
        return torch.relu(torch.einsum("ihf,bih->bif", self.W, self.hidden(x)) + self.b)


def feature_batch(n: int, sparsity: Float[Tensor, "instance"], n_features: int, *,
                  generator: torch.Generator) -> Float[Tensor, "batch instance feature"]:
    """``n`` samples per instance: each feature uniform in [0, 1] with probability ``1 - S``, else 0."""
    shape = (n, len(sparsity), n_features)
    values = torch.rand(shape, generator=generator)
    active = torch.rand(shape, generator=generator) >= sparsity.view(1, -1, 1)
    return values * active


def weighted_loss(model: ReLUOutputModel, x: Tensor, importance: Tensor) -> Float[Tensor, "instance"]:
    """Per instance: mean over the batch of ``Σ_i I_i (x_i − x'_i)²``."""
    return (importance * (x - model(x)) ** 2).sum(-1).mean(0)


@dataclass(frozen=True)
class SuperpositionTraining(Result):
    """Trained instances of the ReLU output model."""

    W: Float[Tensor, "instance hidden feature"]
    """Each instance's embedding (the best of its restarts)."""
    b: Float[Tensor, "instance feature"]
    """Each instance's output bias."""
    loss: Float[Tensor, "instance"]
    """Final loss of each instance (on 16 fresh batches)."""
    config: SuperpositionConfig
    """What was trained."""
    directory: Path | None = field(default=None)
    """Checkpoints (None: not kept)."""

    @property
    def model(self) -> ReLUOutputModel:
        """The kept instances as a model."""
        n_inst, m, n = self.W.shape
        model = ReLUOutputModel(n_inst, n, m, seed=0)
        with torch.no_grad():
            model.W.copy_(self.W)
            model.b.copy_(self.b)
        return model


def train_superposition(config: SuperpositionConfig, *, checkpoint_dir: str | Path | None = None,
                        progress: bool = True) -> SuperpositionTraining:
    """Train every instance and restart together with Adam; keep each instance's best restart.

    ``checkpoint_dir``: None (the default; these train in seconds to minutes), ``"cache"``
    or a path (resumable, and a finished run is loaded).
    """
    directory = checkpoint_directory("superposition", config, checkpoint_dir)
    n_inst = config.n_instances * config.n_seeds
    model = ReLUOutputModel(n_inst, config.n_features, config.n_hidden, seed=config.seed)
    sparsity = torch.tensor(config.sparsities, dtype=torch.float32).repeat(config.n_seeds)
    importance = config.importance_tensor().repeat(config.n_seeds, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step_fn(step: int) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = config.lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / config.steps)).item())
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        x = feature_batch(config.batch_size, sparsity, config.n_features, generator=generator)
        losses = weighted_loss(model, x, importance)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        return {"loss": losses.sum().item()}

    with torch_threads(config.threads):
        resumable_training(model=model, optimizer=optimizer, config=config, steps=config.steps,
                                   step_fn=step_fn, directory=directory, checkpoint_every=config.checkpoint_every,
                                   desc=f"superposition {config.n_features}→{config.n_hidden}", progress=progress)
    with torch.no_grad():  # judge the restarts on fresh data
        x = feature_batch(16 * config.batch_size, sparsity, config.n_features,
                          generator=torch.Generator().manual_seed(config.seed + 999_999_937))
        final = weighted_loss(model, x, importance)
    best = final.view(config.n_seeds, config.n_instances).argmin(0) * config.n_instances + torch.arange(config.n_instances)
    return SuperpositionTraining(W=model.W.detach()[best], b=model.b.detach()[best], loss=final[best], config=config,
                                 directory=directory)
