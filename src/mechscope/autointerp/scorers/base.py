"""What every scorer takes and returns (the registry is in :mod:`mechscope.autointerp.scorers`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mechscope.errors import InputError, check_int


@dataclass(frozen=True, kw_only=True)
class ScoreConfig:
    """Settings shared by the scorers."""

    top_logprobs: int = 20
    """Alternatives read from each log-probability answer."""
    n_simulation: int = 10
    """Examples the simulator predicts: half held-out activating, half random."""
    intruder_trials: int = 5
    """Intruder questions per unit."""
    intruder_size: int = 5
    """Texts per intruder question (one of them the intruder)."""
    seed: int = 0
    """Seed of fuzzing's wrong marks and intruder's draws."""

    def __post_init__(self) -> None:
        for name, least in (("top_logprobs", 1), ("n_simulation", 2), ("intruder_trials", 1),
                            ("intruder_size", 2), ("seed", 0)):
            check_int(f"ScoreConfig.{name}", getattr(self, name), minimum=least)
        if self.intruder_size > 9:
            raise InputError(f"ScoreConfig.intruder_size must be at most 9 (answers are one digit); "
                             f"received {self.intruder_size}")


@dataclass(frozen=True)
class Scored:
    """One scorer's verdict on one (unit, explanation) pair."""

    score: float
    """The headline number: AUC (detection, fuzzing, embedding), correlation (simulation),
    accuracy (intruder)."""
    metrics: dict[str, float]
    """Every number the scorer computed (balanced accuracy, F1, AUC, ...)."""
    examples: list[dict[str, Any]] = field(repr=False)
    """Per example, in delphi's layout: str_tokens, activations, distance, activating,
    prediction, probability, correct."""
