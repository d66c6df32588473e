"""Scorers: how far to trust an explanation. One signature, a registry::

    scored = SCORERS["detection"](records, explanations, backend=backend, embedder=None, config=ScoreConfig())

``explanations[i]`` is scored on ``records[i]``; :mod:`mechscope.autointerp.run` also scores
each unit with another unit's explanation and a random one (the controls).

| name | asks | score |
|---|---|---|
| ``detection`` | does the unit fire in this text? | AUC of P(yes) |
| ``fuzzing`` | are the marked tokens the ones described? | AUC of P(yes) |
| ``simulation`` | the activation, 0-9, on every token | correlation with the truth |
| ``embedding`` | (no LM) cosine of explanation and text | AUC |
| ``intruder`` | which text is another unit's? (no explanation) | accuracy |
"""

from collections.abc import Callable

from mechscope.autointerp.scorers.base import ScoreConfig, Scored
from mechscope.autointerp.scorers.detection import score_detection
from mechscope.autointerp.scorers.embedding import score_embedding
from mechscope.autointerp.scorers.fuzzing import score_fuzzing
from mechscope.autointerp.scorers.intruder import score_intruder
from mechscope.autointerp.scorers.simulation import score_simulation

ScoreFn = Callable[..., list[Scored]]

SCORERS: dict[str, ScoreFn] = {
    "detection": score_detection,
    "fuzzing": score_fuzzing,
    "simulation": score_simulation,
    "embedding": score_embedding,
    "intruder": score_intruder,
}
"""Scorers by name; all take ``(records, explanations, *, backend, embedder, config)``."""

EXPLANATION_FREE = frozenset({"intruder"})
"""Scorers that judge the unit's examples, not an explanation: no explanation controls."""
DELPHI_NAMES = {"fuzzing": "fuzz"}
"""Where a scorer's directory name under ``scores/`` differs from delphi's."""

__all__ = ["DELPHI_NAMES", "EXPLANATION_FREE", "SCORERS", "ScoreConfig", "Scored", "score_detection",
           "score_embedding", "score_fuzzing", "score_intruder", "score_simulation"]
