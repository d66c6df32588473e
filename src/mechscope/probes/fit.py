"""Linear probes fitted in torch: logistic regression (binary or multi-class) and ridge.

::

    probe = fit_probe(x, labels, split, ProbeConfig(), classes=("singular", "plural"))
    probe.score(x[split.test], labels[split.test])      # accuracy (R² for ridge)
    probe.direction                                      # unit vector in activation space

Inputs are standardised with the training part's mean and spread; the L2 penalty is
chosen on the validation part from ``ProbeConfig.penalties`` (ties go to the stronger
penalty) and the probe is the one fitted on the training part with it.

* **logistic**: multinomial (softmax) cross-entropy plus ``penalty / 2 * |W|²``, full
  batch L-BFGS with a strong-Wolfe line search in float64. Two classes are the same
  model as one sigmoid (its weight is the difference of the two rows).
* **ridge**: the closed form on standardised inputs and targets, through the smaller of
  the primal (d × d) and dual (n × n) systems.

:data:`PROBE_KINDS` holds both under one signature. The tests check the logistic fit
at its optimum (gradient ~ 0) and ridge against a least-squares reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError, check_int
from mechscope.probes.data import Split


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """How probes are fitted and split."""

    kind: str | None = None
    """A key of :data:`PROBE_KINDS`; None: ``logistic`` for classes, ``ridge`` for values."""
    penalties: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    """L2 penalties tried; the best on the validation part is kept."""
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    """Train, validation and test shares of the examples."""
    seed: int = 0
    """Seeds the split and the controls' random labels."""
    max_iter: int = 100
    """L-BFGS iterations per logistic fit."""
    shuffles: int = 5
    """Shuffled-label probes averaged for the shuffled baseline: one is noisy where the real
    signal is strong (its labels agree with the true ones on a few more or fewer than half
    of the examples, and the probe learns the true direction with that sign)."""

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in PROBE_KINDS:
            raise InputError(f"ProbeConfig.kind must be one of {', '.join(PROBE_KINDS)} or None; received {self.kind!r}")
        penalties = tuple(self.penalties)
        if not penalties or any(not isinstance(p, (int, float)) or isinstance(p, bool) or p <= 0 for p in penalties):
            raise InputError(f"ProbeConfig.penalties must be positive numbers; received {self.penalties!r}")
        object.__setattr__(self, "penalties", tuple(float(p) for p in penalties))
        check_int("ProbeConfig.seed", self.seed, minimum=0)
        check_int("ProbeConfig.max_iter", self.max_iter, minimum=1)
        check_int("ProbeConfig.shuffles", self.shuffles, minimum=1)

    def kind_for(self, classes: tuple[str, ...]) -> str:
        """The probe kind used for data with these classes (none: a regression target)."""
        kind = self.kind or ("logistic" if classes else "ridge")
        if (kind == "logistic") != bool(classes):
            raise InputError(f"a {kind} probe needs {'class labels' if kind == 'logistic' else 'numeric values'}; "
                             f"this data has {'classes' if classes else 'values'}")
        return kind


@dataclass(frozen=True)
class LinearProbe:
    """A fitted linear probe on standardised inputs."""

    weight: Float[Tensor, "out d"]
    """One row per class (logistic) or one row (ridge), on standardised inputs."""
    bias: Float[Tensor, "out"]
    """Intercepts (ridge: in target units)."""
    mean: Float[Tensor, "d"]
    """Training mean of the inputs."""
    scale: Float[Tensor, "d"]
    """Training spread of the inputs (1 where an input is constant)."""
    classes: tuple[str, ...]
    """Class names; empty for ridge."""
    penalty: float
    """The L2 penalty chosen on validation."""
    target_scale: float = 1.0
    """Ridge: the training targets' spread (the weights predict targets in these units)."""

    def outputs(self, x: Float[Tensor, "n d"]) -> Float[Tensor, "n out"]:
        """Logits (logistic) or predictions (ridge, one column)."""
        z = (x.double() - self.mean) / self.scale
        return (z @ self.weight.T) * self.target_scale + self.bias

    def score(self, x: Float[Tensor, "n d"], y: Tensor) -> float:
        """Accuracy (logistic) or R² (ridge) on ``x``, ``y``."""
        out = self.outputs(x)
        if self.classes:
            return float((out.argmax(-1) == y).double().mean())
        return r2(out[:, 0], y)

    @property
    def direction(self) -> Float[Tensor, "d"]:
        """Unit vector in activation space along which the probe's output grows: class 1's
        logit minus class 0's (two classes), the prediction (ridge); zeros for more classes."""
        if len(self.classes) > 2:
            return torch.zeros_like(self.mean, dtype=torch.float32)
        w = self.weight[1] - self.weight[0] if self.classes else self.weight[0]
        w = w / self.scale
        return (w / w.norm().clamp_min(1e-12)).float()


def r2(prediction: Tensor, y: Tensor) -> float:
    """Coefficient of determination (1 is perfect; 0 is predicting the mean)."""
    y = y.double()
    total = ((y - y.mean()) ** 2).sum().clamp_min(1e-12)
    return float(1 - ((prediction.double() - y) ** 2).sum() / total)


def fit_logistic(z: Tensor, y: Tensor, *, penalty: float, n_out: int, max_iter: int,
                 init: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression with an L2 penalty on the weights (not the biases)."""
    weight = torch.zeros(n_out, z.shape[1], dtype=z.dtype) if init is None else init[0].clone()
    bias = torch.zeros(n_out, dtype=z.dtype) if init is None else init[1].clone()
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7,
                                  tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = logistic_loss(z, y, weight, bias, penalty)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def logistic_loss(z: Tensor, y: Tensor, weight: Tensor, bias: Tensor, penalty: float) -> Tensor:
    """Mean cross-entropy plus ``penalty / 2 * |weight|²``."""
    return torch.nn.functional.cross_entropy(z @ weight.T + bias, y) + 0.5 * penalty * weight.pow(2).sum()


def fit_ridge(z: Tensor, y: Tensor, *, penalty: float, n_out: int, max_iter: int,
              init: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Ridge regression of centred ``y`` on ``z``: minimises ``mean (zw - y)² + penalty |w|²``."""
    n, d = z.shape
    if d <= n:
        w = torch.linalg.solve(z.T @ z + penalty * n * torch.eye(d, dtype=z.dtype), z.T @ y)
    else:
        w = z.T @ torch.linalg.solve(z @ z.T + penalty * n * torch.eye(n, dtype=z.dtype), y)
    return w[None], torch.zeros(1, dtype=z.dtype)


PROBE_KINDS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {"logistic": fit_logistic, "ridge": fit_ridge}
"""Probe fits by name: ``fit(z, y, *, penalty, n_out, max_iter, init) -> (weight, bias)`` on
standardised inputs ``z``."""


def fit_probe(x: Float[Tensor, "n d"], labels: Tensor, split: Split, config: ProbeConfig,
              classes: tuple[str, ...]) -> tuple[LinearProbe, float]:
    """The probe fitted on ``split.train`` whose penalty scores best on ``split.val``, and
    that validation score."""
    kind = config.kind_for(classes)
    x = x.double()
    train = x[split.train]
    mean = train.mean(0)
    scale = train.std(0, unbiased=False)
    scale = torch.where(scale > 1e-8 * scale.max().clamp_min(1e-30), scale, torch.ones_like(scale))
    z = (train - mean) / scale
    y = labels[split.train]
    target_scale = 1.0
    if not classes:
        y = y.double()
        target_scale = float(y.std(unbiased=False).clamp_min(1e-12))
        offset = y.mean()
        y = (y - offset) / target_scale
    best: tuple[float, LinearProbe] | None = None
    init = None
    for penalty in sorted(config.penalties, reverse=True):  # strong to weak: each fit warm-starts the next
        weight, bias = PROBE_KINDS[kind](z, y, penalty=penalty, n_out=max(len(classes), 1), max_iter=config.max_iter,
                                         init=init)
        init = (weight, bias)
        if not classes:
            bias = bias + offset
        probe = LinearProbe(weight=weight, bias=bias, mean=mean, scale=scale, classes=classes, penalty=penalty,
                            target_scale=target_scale)
        score = probe.score(x[split.val], labels[split.val])
        if best is None or score > best[0] + 1e-9:
            best = (score, probe)
    return best[1], best[0]
