"""CounterFact scores: per request, per method, and methods side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from mechscope.results import Result

COLUMNS = ("ES", "PS", "NS", "S", "fluency", "consistency")
"""The headline numbers, in the paper's order."""


@dataclass(frozen=True, kw_only=True)
class CaseScores:
    """One request's scores."""

    case_id: int
    """The request."""
    rewrite: float
    """1 if p(new) > p(true) on the rewrite prompt, else 0."""
    paraphrase: float
    """Fraction of paraphrase prompts with p(new) > p(true) (NaN without any)."""
    neighborhood: float
    """Fraction of neighbourhood prompts with p(true) > p(new) (NaN without any)."""
    rewrite_margin: float
    """p(new) − p(true) on the rewrite prompt (token probabilities, geometric mean over tokens)."""
    paraphrase_margin: float
    """Mean p(new) − p(true) over paraphrases."""
    neighborhood_margin: float
    """Mean p(true) − p(new) over neighbourhood prompts."""
    fluency: float | None
    """n-gram entropy of the generated text, or None without generation."""
    consistency: float | None
    """TF-IDF similarity of the generated text to the reference text, or None."""
    generations: tuple[str, ...]
    """The generated continuations."""


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float("nan")


def harmonic(values: Sequence[float]) -> float:
    if any(math.isnan(v) for v in values):
        return float("nan")
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1 / v for v in values)


@dataclass(frozen=True, kw_only=True)
class EditEvaluation(Result):
    """CounterFact scores of one method on a set of requests."""

    model: str
    """The model."""
    method: str
    """``rome``, ``memit``, ``ft-l`` or ``unedited``."""
    n_requests: int
    """How many requests were scored."""
    ES: float
    """Efficacy score, %."""
    PS: float
    """Paraphrase score, %."""
    NS: float
    """Neighbourhood specificity score, %."""
    S: float
    """Harmonic mean of ES, PS, NS."""
    EM: float
    """Efficacy magnitude: mean p(new) − p(true) on the rewrite prompt, %."""
    PM: float
    """Paraphrase magnitude, %."""
    NM: float
    """Neighbourhood magnitude: mean p(true) − p(new), %."""
    fluency: float
    """Mean n-gram entropy of generations (NaN without generation)."""
    consistency: float
    """Mean TF-IDF similarity to reference text, % (NaN without generation)."""
    edit_seconds: float
    """Time spent computing edits (all of them)."""
    cases: tuple[CaseScores, ...]
    """Per-request scores."""

    @classmethod
    def of(cls, model: str, method: str, cases: Sequence[CaseScores], *, edit_seconds: float) -> EditEvaluation:
        es, ps, ns = (100 * _mean([getattr(c, f) for c in cases]) for f in ("rewrite", "paraphrase", "neighborhood"))
        return cls(
            model=model, method=method, n_requests=len(cases), ES=es, PS=ps, NS=ns, S=harmonic([es, ps, ns]),
            EM=100 * _mean([c.rewrite_margin for c in cases]), PM=100 * _mean([c.paraphrase_margin for c in cases]),
            NM=100 * _mean([c.neighborhood_margin for c in cases]), fluency=_mean([c.fluency for c in cases]),
            consistency=100 * _mean([c.consistency for c in cases]), edit_seconds=edit_seconds, cases=tuple(cases),
        )

    def summary(self) -> dict[str, float]:
        return {column: getattr(self, column) for column in COLUMNS}


@dataclass(frozen=True, kw_only=True)
class EvaluationTable(Result):
    """Several methods' CounterFact scores on the same requests (the paper's Table 4)."""

    rows: tuple[EditEvaluation, ...]
    """One evaluation per method."""

    def markdown(self) -> str:
        head = "| method | " + " | ".join(COLUMNS) + " | edit s/request |\n|---|" + "---|" * (len(COLUMNS) + 1)
        lines = [head]
        for row in self.rows:
            per_edit = row.edit_seconds / max(1, row.n_requests)
            lines.append(f"| {row.method} | " + " | ".join(f"{getattr(row, c):.1f}" for c in COLUMNS)
                         + f" | {per_edit:.1f} |")
        return "\n".join(lines)

    def plot(self) -> Figure:
        """Grouped bars of ES, PS, NS and S per method."""
        fig = Figure(figsize=(7.0, 3.6), layout="constrained")
        ax = fig.add_subplot()
        metrics = ("ES", "PS", "NS", "S")
        width = 0.8 / max(1, len(self.rows))
        for i, row in enumerate(self.rows):
            xs = [m + (i - (len(self.rows) - 1) / 2) * width for m in range(len(metrics))]
            bars = ax.bar(xs, [getattr(row, m) for m in metrics], width, label=row.method)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks(range(len(metrics)))
        ax.set_xticklabels(metrics)
        ax.set_ylim(0, 122)  # room above the 100% bars for the legend
        ax.set_ylabel("%")
        model = self.rows[0].model if self.rows else ""
        n = self.rows[0].n_requests if self.rows else 0
        ax.set_title(f"{model}: CounterFact-style scores on {n} edits", fontsize=10)
        ax.legend(fontsize=8, ncols=len(self.rows), loc="upper center")
        return fig
