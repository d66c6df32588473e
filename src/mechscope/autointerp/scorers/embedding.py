"""Embedding (delphi): with a sentence-embedding model, is the explanation nearer the
held-out texts the unit fires in than those it does not? Score: AUC of the cosine
similarity between the explanation and each held-out text. No language model, so it is
fast; it checks topic more than token-level precision.
"""

from __future__ import annotations

from collections.abc import Sequence

from mechscope.autointerp.prompts import one_line
from mechscope.autointerp.records import UnitRecords
from mechscope.autointerp.scorers.base import ScoreConfig, Scored
from mechscope.autointerp.scorers.detection import TEST_KINDS
from mechscope.autointerp.scorers.metrics import classification
from mechscope.errors import InputError


def score_embedding(records: Sequence[UnitRecords], explanations: Sequence[str], *, backend=None, embedder=None,
                    config: ScoreConfig = ScoreConfig()) -> list[Scored]:
    """Embedding scores of ``explanations[i]`` on ``records[i]``'s held-out examples."""
    if embedder is None:
        raise InputError("the embedding scorer needs a sentence embedder "
                         "(mechscope.autointerp.embedders.load_embedder)")
    examples = [r.of_kind(*TEST_KINDS) for r in records]
    texts = [one_line(e.text) for unit in examples for e in unit]
    vectors = embedder(list(explanations) + texts).float()
    vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    queries, docs = vectors[: len(records)], vectors[len(records) :]
    out, first = [], 0
    for u, unit in enumerate(examples):
        sims = (docs[first : first + len(unit)] @ queries[u]).tolist()
        first += len(unit)
        labels = [e.activating for e in unit]
        rows = [{"str_tokens": list(e.str_tokens), "activations": list(e.activations), "distance": e.quantile,
                 "activating": e.activating, "similarity": s, "kind": e.kind} for e, s in zip(unit, sims)]
        metrics = {"auc": classification(labels, sims)["auc"]}
        out.append(Scored(score=metrics["auc"], metrics=metrics, examples=rows))
    return out
