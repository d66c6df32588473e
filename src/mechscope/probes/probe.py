"""Probing a hook point, or every layer, with the controls built into each result.

::

    data = make_probe_data("sva-number", model, n=512)
    result = probe(model, data, hook_name="blocks.10.hook_resid_post")
    result.test_score, result.control_score, result.selectivity, result.shuffled_score
    sweep = probe_layers(model, data)                 # every layer's resid_post, one forward pass per batch
    sweep.plot().savefig("sva_layers.png")

A result is fitted on the same split with the same penalty search on the real labels, on
Hewitt & Liang's control task, and on ``ProbeConfig.shuffles`` permutations of the labels
(:mod:`mechscope.probes.controls`). ``k`` makes it a sparse probe (Gurnee et al., 2023):
the ``k`` inputs whose class means differ most on the training part, then a probe on
those alone; each control selects its own ``k`` from its own labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.positions import read_positions
from mechscope.errors import InputError, check_int
from mechscope.probes.controls import chance, control_labels, shuffled_labels
from mechscope.probes.data import ProbeData, Split, split_examples
from mechscope.probes.fit import LinearProbe, ProbeConfig, fit_probe
from mechscope.results import Result


@dataclass(frozen=True)
class ProbeResult(Result):
    """A probe at one hook point, with its controls."""

    data: str
    """The dataset's name."""
    hook_name: str
    """Where the activations were read (or a description of the features, e.g. an SAE's latents)."""
    kind: str
    """The probe kind (``logistic`` or ``ridge``)."""
    metric: str
    """``accuracy`` (classes) or ``r2`` (values)."""
    features: tuple[int, ...]
    """The inputs the probe reads (top-k by mean difference); empty: all of them."""
    n_train: int
    """Training examples."""
    n_val: int
    """Validation examples (the penalty is chosen on them)."""
    n_test: int
    """Test examples (every score below is on them, but the training score)."""
    penalty: float
    """The L2 penalty chosen on validation."""
    train_score: float
    """Score on the training part."""
    test_score: float
    """Score on the test part: the result."""
    control_score: float
    """The same probe's test score on Hewitt & Liang's control task (random labels per word type)."""
    selectivity: float
    """``test_score - control_score``."""
    shuffled_score: float
    """Mean test score (on the true labels) of probes fitted to shuffled labels
    (``ProbeConfig.shuffles`` permutations)."""
    chance: float
    """The majority class's test share (classes), or 0 (R² of a constant)."""
    direction: Float[Tensor, "d"]
    """Unit direction of the probe in the space of its inputs (zeros for more than two classes)."""


def probe_features(
    x: Float[Tensor, "example d"],
    data: ProbeData,
    types: Sequence[str],
    *,
    hook_name: str = "",
    config: ProbeConfig = ProbeConfig(),
    k: int | None = None,
) -> ProbeResult:
    """Probe features ``x`` (one row per example of ``data``) with its controls;
    ``types`` are the examples' word types for the control task."""
    if x.dim() != 2 or x.shape[0] != len(data) or len(types) != len(data):
        raise InputError(f"need one feature row and one type per example ({len(data)}); received features of "
                         f"shape {tuple(x.shape)} and {len(types)} types")
    check_int("k", k, minimum=1, optional=True)
    split = split_examples(len(data), fractions=config.fractions, seed=config.seed,
                           strata=data.labels if data.classes else None)
    real, real_features, _ = _fit(x, data.labels, split, config, data.classes, k)
    control = control_labels(data.labels, types, seed=config.seed + 1)
    control_probe, control_features, _ = _fit(x, control, split, config, data.classes, k)
    test = split.test
    score = lambda probe, features, labels: probe.score(x[test][:, features], labels[test])  # noqa: E731
    shuffled_scores = []
    for i in range(config.shuffles):
        shuffled = shuffled_labels(data.labels, split, seed=config.seed + 2 + i)
        shuffled_probe, shuffled_features, _ = _fit(x, shuffled, split, config, data.classes, k)
        shuffled_scores.append(score(shuffled_probe, shuffled_features, data.labels))
    test_score = score(real, real_features, data.labels)
    control_score = score(control_probe, control_features, control)
    direction = torch.zeros(x.shape[1])
    direction[real_features] = real.direction
    return ProbeResult(
        data=data.name, hook_name=hook_name, kind=config.kind_for(data.classes),
        metric="accuracy" if data.classes else "r2",
        features=tuple(real_features.tolist()) if k is not None else (),
        n_train=len(split.train), n_val=len(split.val), n_test=len(test), penalty=real.penalty,
        train_score=real.score(x[split.train][:, real_features], data.labels[split.train]),
        test_score=test_score, control_score=control_score, selectivity=test_score - control_score,
        shuffled_score=sum(shuffled_scores) / len(shuffled_scores),
        chance=chance(data.labels, split, data.classes), direction=direction,
    )


def _fit(x: Tensor, labels: Tensor, split: Split, config: ProbeConfig, classes: tuple[str, ...],
         k: int | None) -> tuple[LinearProbe, Tensor, float]:
    features = (top_features(x[split.train], labels[split.train], classes, k) if k is not None
                else torch.arange(x.shape[1]))
    probe, val_score = fit_probe(x[:, features], labels, split, config, classes)
    return probe, features, val_score


def top_features(x: Float[Tensor, "example d"], labels: Tensor, classes: tuple[str, ...], k: int) -> Tensor:
    """The ``k`` inputs whose means differ most between classes (for several classes: each
    class against the rest, the largest difference); for values, the largest |correlation|."""
    x = x.double()
    if classes:
        gaps = []
        for c in range(len(classes)):
            inside = labels == c
            if inside.any() and (~inside).any():
                gaps.append((x[inside].mean(0) - x[~inside].mean(0)).abs())
        score = torch.stack(gaps).amax(0) if gaps else torch.zeros(x.shape[1], dtype=x.dtype)
    else:
        xc, yc = x - x.mean(0), labels.double() - labels.double().mean()
        score = (xc.T @ yc).abs() / (xc.norm(dim=0) * yc.norm()).clamp_min(1e-12)
    return score.topk(min(k, x.shape[1])).indices.sort().values


def probe(
    model, data: ProbeData, *, hook_name: str, config: ProbeConfig = ProbeConfig(), k: int | None = None,
    batch_size: int = 32,
) -> ProbeResult:
    """Read ``data`` at ``hook_name`` and probe it (see :func:`probe_features`)."""
    read = read_positions(model, hook_name, data.texts, data.positions, batch_size=batch_size)
    return probe_features(read.acts[hook_name], data, data.types or read.tokens, hook_name=hook_name,
                          config=config, k=k)


@dataclass(frozen=True)
class ProbeSweep(Result):
    """Probes of one dataset at the same site of several layers."""

    data: str
    """The dataset's name."""
    site: str
    """The hook point within each block, e.g. ``hook_resid_post``."""
    layers: tuple[int, ...]
    """The layers probed."""
    results: tuple[ProbeResult, ...]
    """One probe result per layer, in ``layers`` order."""

    @property
    def best(self) -> ProbeResult:
        """The layer whose probe scores best on the test part."""
        return max(self.results, key=lambda r: r.test_score)

    def plot(self):
        """Test score, control task, shuffled labels and chance per layer; selectivity below."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.5, 5.2), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
        layers = list(self.layers)
        series = [("probe (test)", "test_score", "C0", "-"), ("control task", "control_score", "C1", "--"),
                  ("shuffled labels", "shuffled_score", "C7", ":")]
        for label, field, color, style in series:
            top.plot(layers, [getattr(r, field) for r in self.results], style, color=color, marker="o",
                     markersize=3, label=label)
        top.plot(layers, [r.chance for r in self.results], color="k", lw=0.8, alpha=0.5, label="chance")
        metric = self.results[0].metric
        top.set_ylabel("R²" if metric == "r2" else "accuracy")
        top.set_title(f"{self.data}: linear probes at blocks.L.{self.site}")
        top.legend(fontsize=8, loc="best")
        top.grid(alpha=0.3)
        bottom.bar(layers, [r.selectivity for r in self.results], color="C2")
        bottom.set_ylabel("selectivity")
        bottom.set_xlabel("layer")
        bottom.grid(alpha=0.3)
        return fig


def probe_layers(
    model, data: ProbeData, *, layers: Sequence[int] | None = None, site: str = "hook_resid_post",
    config: ProbeConfig = ProbeConfig(), k: int | None = None, batch_size: int = 32, progress: bool = False,
) -> ProbeSweep:
    """Probe ``blocks.{layer}.{site}`` at every layer in ``layers`` (default: all),
    reading all of them in the same forward passes."""
    layers = tuple(range(model.cfg.n_layers)) if layers is None else tuple(layers)
    if not layers or any(isinstance(l, bool) or not isinstance(l, int) or not 0 <= l < model.cfg.n_layers
                         for l in layers):
        raise InputError(f"layers must be integers in [0, {model.cfg.n_layers}); received {list(layers)}")
    names = [f"blocks.{layer}.{site}" for layer in layers]
    read = read_positions(model, names, data.texts, data.positions, batch_size=batch_size, progress=progress)
    types = data.types or read.tokens
    results = tuple(probe_features(read.acts[name], data, types, hook_name=name, config=config, k=k)
                    for name in tqdm(names, desc="probing layers", disable=not progress))
    return ProbeSweep(data=data.name, site=site, layers=layers, results=results)
