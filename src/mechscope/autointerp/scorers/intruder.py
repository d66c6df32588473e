"""Intruder (delphi): do a unit's examples share something a judge can see? Each question
shows ``intruder_size`` texts with their firing tokens marked: all but one are the unit's
held-out activating examples, one (at a random place) is another unit's. The judge names
the odd one out; score: accuracy. It scores the unit, not an explanation (explanations
are not shown), so its control is the same answers checked against a random key: the
judge's chance level, measured, including any bias toward a position.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mechscope.autointerp.backends.base import probability_of
from mechscope.autointerp.prompts import intruder_prompt, mark
from mechscope.autointerp.records import UnitRecords
from mechscope.autointerp.scorers.base import ScoreConfig, Scored


def score_intruder(records: Sequence[UnitRecords], explanations: Sequence[str] | None = None, *, backend,
                   embedder=None, config: ScoreConfig = ScoreConfig()) -> list[Scored]:
    """Intruder accuracy of each unit, with the random-key control in ``metrics``."""
    generator = torch.Generator().manual_seed(config.seed)
    k = config.intruder_size
    prompts, keys, owners, shown = [], [], [], []
    for u, r in enumerate(records):
        own = r.of_kind("test_activating")
        others = [j for j in range(len(records)) if j != u and records[j].of_kind("test_activating")]
        if len(own) < k - 1 or not others:
            continue
        for _ in range(config.intruder_trials):
            picks = [own[int(i)] for i in torch.randperm(len(own), generator=generator)[: k - 1]]
            other = records[others[int(torch.randint(len(others), (1,), generator=generator))]]
            pool = other.of_kind("test_activating")
            intruder = pool[int(torch.randint(len(pool), (1,), generator=generator))]
            where = int(torch.randint(k, (1,), generator=generator))
            texts = [mark(e, r.threshold) for e in picks]
            texts.insert(where, mark(intruder, other.threshold))
            prompts.append(intruder_prompt(texts))
            keys.append(where)
            owners.append(u)
            shown.append(texts)
    tops = backend.next_token_logprobs(prompts, top=config.top_logprobs) if prompts else []
    rows: list[list[dict]] = [[] for _ in records]
    for top, key, u, texts in zip(tops, keys, owners, shown):
        probs = [probability_of(top, [str(i + 1)]) for i in range(k)]
        choice = max(range(k), key=lambda i: probs[i])
        random_key = int(torch.randint(k, (1,), generator=generator))
        rows[u].append({"texts": texts, "intruder": key, "choice": choice, "probabilities": probs,
                        "correct": choice == key, "random_key_correct": choice == random_key})
    out = []
    for unit_rows in rows:
        n = max(len(unit_rows), 1)
        accuracy = sum(r["correct"] for r in unit_rows) / n
        chance = sum(r["random_key_correct"] for r in unit_rows) / n
        out.append(Scored(score=accuracy, metrics={"accuracy": accuracy, "random_key_accuracy": chance,
                                                   "trials": float(len(unit_rows))}, examples=unit_rows))
    return out
