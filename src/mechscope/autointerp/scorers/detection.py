"""Detection (delphi): can a judge tell, from the explanation alone, which held-out texts
the unit fires in? Each held-out example (activating, random and hard negatives) is one
yes/no question; the judge's P(yes) ranks the examples. Score: AUC; also balanced
accuracy, precision, recall and F1 at P(yes) >= 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

from mechscope.autointerp.backends.base import Prompt, yes_probability
from mechscope.autointerp.prompts import detection_prompt, one_line
from mechscope.autointerp.records import Example, UnitRecords
from mechscope.autointerp.scorers.base import ScoreConfig, Scored
from mechscope.autointerp.scorers.metrics import classification

TEST_KINDS = ("test_activating", "test_random", "test_hard_negative")


def judge(items: list[tuple[Prompt, Example, bool]], spans: list[int], backend, config: ScoreConfig,
          *, marked: list[str] | None = None) -> list[Scored]:
    """Ask every question at once; split the answers into one :class:`Scored` per unit
    (``spans`` counts each unit's questions)."""
    tops = backend.next_token_logprobs([prompt for prompt, _, _ in items], top=config.top_logprobs)
    out, first = [], 0
    for n in spans:
        rows = []
        for k in range(first, first + n):
            _, example, label = items[k]
            p = yes_probability(tops[k])
            rows.append({"str_tokens": list(example.str_tokens), "activations": list(example.activations),
                         "distance": example.quantile, "activating": label, "prediction": p >= 0.5,
                         "probability": p, "correct": (p >= 0.5) == label, "kind": example.kind}
                        | ({"marked": marked[k]} if marked is not None else {}))
        metrics = classification([r["activating"] for r in rows], [r["probability"] for r in rows])
        out.append(Scored(score=metrics["auc"], metrics=metrics, examples=rows))
        first += n
    return out


def score_detection(records: Sequence[UnitRecords], explanations: Sequence[str], *, backend, embedder=None,
                    config: ScoreConfig = ScoreConfig()) -> list[Scored]:
    """Detection scores of ``explanations[i]`` on ``records[i]``'s held-out examples."""
    items, spans = [], []
    for r, explanation in zip(records, explanations):
        examples = r.of_kind(*TEST_KINDS)
        items += [(detection_prompt(explanation, one_line(e.text)), e, e.activating) for e in examples]
        spans.append(len(examples))
    return judge(items, spans, backend, config)
