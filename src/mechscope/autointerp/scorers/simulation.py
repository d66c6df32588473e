"""Simulation (Bills et al. 2023): a simulator reads the explanation and predicts the unit's
activation, 0 to 9, on every token of held-out texts; the score is the correlation of its
predictions with the true activations over all those tokens.

All at once, as Bills et al.'s fast simulator: one plain-text prompt per example lists its
tokens each followed by a tab and ``unknown``; the simulator's probabilities for the
digits at each ``unknown`` give the expected activation there. Examples: half held-out
activating, half random non-activating. Needs a backend with ``slot_logprobs`` (any local
model; a server with echoed log-probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence

from mechscope.autointerp.backends.base import digit_distribution
from mechscope.autointerp.prompts import simulation_text
from mechscope.autointerp.records import Example, UnitRecords
from mechscope.autointerp.scorers.base import ScoreConfig, Scored
from mechscope.autointerp.scorers.metrics import pearson


def simulation_examples(records: UnitRecords, n: int) -> list[Example]:
    active = records.of_kind("test_activating")[: (n + 1) // 2]
    return active + records.of_kind("test_random")[: n - len(active)]


def score_simulation(records: Sequence[UnitRecords], explanations: Sequence[str], *, backend, embedder=None,
                     config: ScoreConfig = ScoreConfig()) -> list[Scored]:
    """Simulation scores of ``explanations[i]`` on ``records[i]``."""
    texts, slots, owners = [], [], []
    for u, (r, explanation) in enumerate(zip(records, explanations)):
        for e in simulation_examples(r, config.n_simulation):
            text, where = simulation_text(explanation, e.str_tokens)
            texts.append(text)
            slots.append(where)
            owners.append((u, e))
    answers = backend.slot_logprobs(texts, slots, top=config.top_logprobs)
    rows: list[list[dict]] = [[] for _ in records]
    for (u, e), tops in zip(owners, answers):
        expected = [sum(d * p for d, p in enumerate(digit_distribution(top))) for top in tops]
        rows[u].append({"str_tokens": list(e.str_tokens), "activations": list(e.activations),
                        "distance": e.quantile, "activating": e.activating, "simulated": expected, "kind": e.kind})
    out = []
    for r, unit_rows in zip(records, rows):
        true = [a for row in unit_rows for a in row["activations"]]
        simulated = [s for row in unit_rows for s in row["simulated"]]
        per_example = [pearson(row["activations"], row["simulated"]) for row in unit_rows if row["activating"]]
        r_all = pearson(true, simulated)
        metrics = {"correlation": r_all,
                   "mean_activating_correlation": sum(per_example) / len(per_example) if per_example else 0.0}
        out.append(Scored(score=r_all, metrics=metrics, examples=unit_rows))
    return out
