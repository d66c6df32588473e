"""Do the scorers work? Score ground-truth units with their true explanation and every
other unit's, and see whether the truth wins.

::

    units, truths = indicator_units(model.tokenizer)
    build_records(store, units, range(units.n_units), "gt/", tokenizer=model.tokenizer)
    check = validate_scorers(load_all("gt/"), truths, backend=backend, scorers=["detection", "fuzzing"])
    check.margins["detection"]      # per unit: true score - best wrong score
    check.top_rate["detection"]     # fraction of units whose true explanation scores best

A scorer whose true explanations do not beat the wrong ones cannot be trusted on real
features, whatever its numbers there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mechscope.autointerp.records import UnitRecords
from mechscope.autointerp.run import backend_description, random_explanation
from mechscope.autointerp.scorers import EXPLANATION_FREE, SCORERS, ScoreConfig
from mechscope.errors import InputError
from mechscope.results import Result


@dataclass(frozen=True)
class ScorerValidation(Result):
    """Each ground-truth unit scored with every candidate explanation."""

    units: tuple[str, ...]
    """The ground-truth units, in order."""
    candidates: tuple[str, ...]
    """The explanations tried: the units' true ones (same order), then a random one."""
    scores: dict[str, list[list[float]]]
    """Per scorer, ``scores[s][unit][candidate]``."""
    margins: dict[str, list[float]]
    """Per scorer and unit, the true explanation's score minus the best other one."""
    top_rate: dict[str, float]
    """Per scorer, the fraction of units whose true explanation scores highest."""
    backend: dict[str, Any]
    """Who judged."""

    def plot(self):
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        scorers = list(self.scores)
        fig = Figure(figsize=(4.4 * len(scorers), 3.6), layout="constrained")
        axes = fig.subplots(1, len(scorers), squeeze=False)[0]
        for ax, scorer in zip(axes, scorers):
            grid = self.scores[scorer]
            image = ax.imshow(grid, cmap="viridis", aspect="auto")
            labels = [_short(c) for c in self.candidates]
            ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=6)
            ax.set_yticks(range(len(self.units)), [f"unit of {label}" for label in labels[: len(self.units)]],
                          fontsize=6)
            for u, row in enumerate(grid):
                for c, value in enumerate(row):
                    ax.text(c, u, f"{value:.2f}", ha="center", va="center", fontsize=5,
                            color="white" if value < sum(map(sum, grid)) / sum(map(len, grid)) else "black")
                ax.add_patch(Rectangle((u - 0.5, u - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
            ax.set_xlabel("explanation scored (red: the unit's true one)", fontsize=7)
            ax.set_title(f"{scorer}: truth on top {self.top_rate[scorer]:.0%}", fontsize=8)
            fig.colorbar(image, ax=ax, shrink=0.8)
        return fig


def _short(text: str) -> str:
    return text if len(text) <= 22 else text[:20] + "…"


def validate_scorers(records: Sequence[UnitRecords], truths: Sequence[str], *, backend, scorers: Sequence[str],
                     embedder=None, config: ScoreConfig = ScoreConfig()) -> ScorerValidation:
    """Score every unit with every truth (and a random explanation); see the module."""
    if len(records) != len(truths) or len(records) < 2:
        raise InputError(f"give at least two ground-truth units and one true explanation each; received "
                         f"{len(records)} units and {len(truths)} explanations")
    judged = [s for s in scorers if s not in EXPLANATION_FREE]
    candidates = [*truths, random_explanation("ground-truth", config.seed)]
    scores, margins, top = {}, {}, {}
    for scorer in judged:
        pairs = [(r, c) for r in records for c in candidates]
        results = SCORERS[scorer]([r for r, _ in pairs], [c for _, c in pairs], backend=backend, embedder=embedder,
                                  config=config)
        grid = [[results[u * len(candidates) + c].score for c in range(len(candidates))] for u in range(len(records))]
        scores[scorer] = grid
        margins[scorer] = [row[u] - max(v for c, v in enumerate(row) if c != u) for u, row in enumerate(grid)]
        top[scorer] = sum(m > 0 for m in margins[scorer]) / len(records)
    return ScorerValidation(units=tuple(r.name for r in records), candidates=tuple(candidates), scores=scores,
                            margins=margins, top_rate=top, backend=backend_description(backend))
