"""Fuzzing (delphi): does the explanation fit the *marked* tokens? Each held-out activating
example is asked about twice: once with the tokens the unit fires on marked (the answer
should be yes) and once with as many other tokens marked at random (no). Score: AUC of
P(yes); also balanced accuracy and F1. Unlike detection, it checks which tokens the
explanation picks out, not only which texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mechscope.autointerp.prompts import fuzzing_prompt, mark
from mechscope.autointerp.records import UnitRecords
from mechscope.autointerp.scorers.base import ScoreConfig, Scored
from mechscope.autointerp.scorers.detection import judge


def wrong_positions(n_tokens: int, right: list[int], generator: torch.Generator) -> list[int]:
    """As many positions as ``right``, avoiding them where the text allows."""
    others = [i for i in range(n_tokens) if i not in right]
    pool = others if len(others) >= len(right) else list(range(n_tokens))
    picks = torch.randperm(len(pool), generator=generator)[: max(1, len(right))]
    return sorted(pool[int(i)] for i in picks)


def score_fuzzing(records: Sequence[UnitRecords], explanations: Sequence[str], *, backend, embedder=None,
                  config: ScoreConfig = ScoreConfig()) -> list[Scored]:
    """Fuzzing scores of ``explanations[i]`` on ``records[i]``'s held-out activating examples."""
    generator = torch.Generator().manual_seed(config.seed)
    items, spans, marked = [], [], []
    for r, explanation in zip(records, explanations):
        examples = r.of_kind("test_activating")
        for e in examples:
            right = [i for i, a in enumerate(e.activations) if a > r.threshold]
            for text, label in ((mark(e, r.threshold), True),
                                (mark(e, r.threshold, wrong_positions(len(e.str_tokens), right, generator)), False)):
                items.append((fuzzing_prompt(explanation, text), e, label))
                marked.append(text)
        spans.append(2 * len(examples))
    return judge(items, spans, backend, config, marked=marked)
