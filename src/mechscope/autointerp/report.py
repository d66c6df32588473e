"""What an explain-and-score run reports: every unit's scores and the controls' distributions.

    report.summary["detection"]["explanation"]   # {"n", "mean", "std", "median", "q25", "q75"}
    report.summary["detection"]["shuffled"]      # the same explanations on the wrong units
    report.margin("detection")                   # mean(explanation) - mean(shuffled)
    report.plot()                                # one panel per scorer: explanation vs controls
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mechscope.results import Result

CONTROLS = ("explanation", "shuffled", "random")
LABELS = {"detection": "AUC of P(yes)", "fuzzing": "AUC of P(yes)", "simulation": "correlation",
          "embedding": "AUC of cosine similarity", "intruder": "accuracy"}
"""The x-axis of each scorer's panel."""
"""What is scored: the unit's own explanation, another unit's, a random one."""


@dataclass(frozen=True)
class UnitScore:
    """One scorer's headline number for one unit under one control."""

    unit: str
    """The unit's name."""
    scorer: str
    """Which scorer."""
    control: str
    """``explanation`` (its own), ``shuffled`` (another unit's) or ``random``; the intruder
    scorer, which reads no explanation, has only ``explanation`` and keeps its random-key
    control in ``metrics['random_key_accuracy']``."""
    explanation: str
    """The explanation that was scored."""
    score: float
    """The scorer's headline number (see :mod:`mechscope.autointerp.scorers`)."""
    metrics: dict[str, float]
    """All the scorer's numbers."""


def describe(values: Sequence[float]) -> dict[str, float]:
    """n, mean, std, median and quartiles."""
    if not values:
        return {"n": 0}
    x = torch.tensor(values, dtype=torch.float64)
    q = torch.quantile(x, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {"n": len(values), "mean": float(x.mean()), "std": float(x.std()) if len(values) > 1 else 0.0,
            "median": q[1], "q25": q[0], "q75": q[2]}


def summarise(scores: Sequence[UnitScore]) -> dict[str, dict[str, dict[str, float]]]:
    """Per scorer and control, the distribution of headline scores over units."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in scores:
        groups[s.scorer][s.control].append(s.score)
        if "random_key_accuracy" in s.metrics:
            groups[s.scorer]["random-key"].append(s.metrics["random_key_accuracy"])
    return {scorer: {control: describe(v) for control, v in by.items()} for scorer, by in groups.items()}


@dataclass(frozen=True)
class AutointerpReport(Result):
    """Explanations and scores of a set of units, with the controls."""

    units: tuple[str, ...]
    """The units, in order."""
    explanations: dict[str, str]
    """Each unit's explanation."""
    scores: tuple[UnitScore, ...]
    """Every (unit, scorer, control) score."""
    summary: dict[str, dict[str, dict[str, float]]]
    """Per scorer and control, the distribution of scores over units (see :func:`describe`)."""
    backend: dict[str, Any]
    """The language-model backend that scored (no secrets)."""
    scorers: tuple[str, ...]
    """The scorers run."""

    def values(self, scorer: str, control: str = "explanation") -> list[float]:
        return [s.score for s in self.scores if s.scorer == scorer and s.control == control]

    def margin(self, scorer: str, control: str = "shuffled") -> float:
        """Mean score of the explanations minus that of a control."""
        base = self.summary[scorer]
        other = "random-key" if control not in base and "random-key" in base else control
        return base["explanation"]["mean"] - base[other]["mean"]

    def plot(self):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.6 * max(len(self.scorers), 1), 3.4), layout="constrained")
        axes = fig.subplots(1, max(len(self.scorers), 1), squeeze=False)[0]
        colours = {"explanation": "tab:blue", "shuffled": "tab:orange", "random": "tab:grey", "random-key": "tab:grey"}
        for ax, scorer in zip(axes, self.scorers):
            groups = {c: [s.score for s in self.scores if s.scorer == scorer and s.control == c] for c in CONTROLS}
            if scorer == "intruder":
                groups["random-key"] = [s.metrics.get("random_key_accuracy", 0.0) for s in self.scores
                                        if s.scorer == scorer]
            groups = {c: v for c, v in groups.items() if v}
            low = min(min(v) for v in groups.values()) if groups else 0.0
            bins = torch.linspace(min(low, 0.0), 1.0, 21).tolist()
            for control, values in groups.items():
                mean = sum(values) / len(values)
                ax.hist(values, bins=bins, histtype="step", linewidth=1.8, color=colours[control],
                        label=f"{control} (mean {mean:.2f})")
                ax.axvline(mean, color=colours[control], linestyle="--", linewidth=1)
            ax.set_title(f"{scorer} ({len(groups.get('explanation', []))} units)")
            ax.set_xlabel(LABELS.get(scorer, "score"))
            ax.set_ylabel("units")
            ax.legend(fontsize=7)
        return fig


@dataclass(frozen=True)
class ExplanationSet(Result):
    """The explanations of a set of units."""

    units: tuple[str, ...]
    """The units, in order."""
    texts: dict[str, str]
    """Each unit's explanation."""
    explainer: str
    """Which explainer wrote them."""
    backend: dict[str, Any]
    """The language-model backend that wrote them (no secrets)."""
