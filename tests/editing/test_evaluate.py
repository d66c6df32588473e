"""CounterFact scoring: text measures, per-request scores, the aggregate."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import CONFIGS, request

from mechscope.editing import EvalConfig, EvaluationTable, evaluate_edits
from mechscope.editing.evaluate import target_logprobs
from mechscope.editing.scores import harmonic
from mechscope.editing.text_metrics import fit_idf, ngram_entropy, tfidf_similarity
from mechscope.facts import EditRequest, Rewrite


def test_ngram_entropy():
    assert ngram_entropy("a a a a a a") == pytest.approx(0.0)
    # four distinct bigrams and three distinct trigrams: (2/3·2 + 4/3·log2 3) / 2
    assert ngram_entropy("a b c d e") == pytest.approx((2 / 3 * 2 + 4 / 3 * math.log2(3)) / 2)
    assert ngram_entropy("the cat sat on the mat, the dog sat") > ngram_entropy("the the the the the the the")


def test_tfidf_similarity():
    idf = fit_idf(["paris is in france", "rome is in italy", "berlin is in germany"])
    assert tfidf_similarity("rome italy", "rome is in italy", idf) > tfidf_similarity("rome italy", "paris france", idf)
    assert tfidf_similarity("rome italy", "rome italy", idf) == pytest.approx(1.0)
    assert tfidf_similarity("", "rome", idf) == 0.0


def test_harmonic_mean():
    assert harmonic([100.0, 50.0, 100.0]) == pytest.approx(75.0)
    assert harmonic([100.0, 0.0, 100.0]) == 0.0


def test_target_logprobs_reads_each_target_token(llama):
    with torch.no_grad():
        logprobs = llama("located in city of eiffel tower paris")[0].log_softmax(-1)
    ids = llama.to_tokens("located in city of eiffel tower paris")[0]
    expected = (logprobs[5, ids[6]] + logprobs[4, ids[5]]) / 2
    value = target_logprobs(llama, ["located in city of eiffel", "located"], [" tower paris", "in"])
    assert float(value[0]) == pytest.approx(float(expected), abs=1e-5)
    assert float(value[1]) == pytest.approx(float(logprobs[0, ids[1]]), abs=1e-5)


def _request(model) -> EditRequest:
    base = request(model)
    rewrite = Rewrite(prompt=base.requested_rewrite.prompt, subject="eiffel tower", target_new="rome",
                      target_true=base.requested_rewrite.target_true)
    return EditRequest(case_id=0, requested_rewrite=rewrite, paraphrase_prompts=("the city of eiffel tower",),
                       neighborhood_prompts=("located in city of cat", "located in city of dog"),
                       attribute_prompts=("the colosseum is in",), generation_prompts=("the eiffel tower is",))


def test_evaluation_of_an_edit_and_of_the_unedited_model(llama, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    req = _request(llama)
    config = EvalConfig(max_new_tokens=8, n_reference=1)
    unedited = evaluate_edits(llama, [req], method=None, config=config, progress=False)
    edited = evaluate_edits(llama, [req], method="rome", method_config=CONFIGS["rome"], config=config,
                            progress=False)
    assert unedited.ES == 0.0 and edited.ES == 100.0  # the tiny model says the true target, then rome
    (case,) = edited.cases
    assert edited.PS == 100 * case.paraphrase and edited.NS == 100 * case.neighborhood
    assert edited.S == pytest.approx(harmonic([edited.ES, edited.PS, edited.NS]))
    assert len(case.generations) == 1 and case.fluency is not None and 0 <= case.consistency <= 1
    assert edited.edit_seconds > 0 and unedited.edit_seconds == 0
    table = EvaluationTable(rows=(unedited, edited))
    assert "| rome | 100.0 |" in table.markdown()
    table.plot().savefig(tmp_path / "table.png")
    assert edited.to_dict()["cases"][0]["case_id"] == 0


def test_no_generation(llama):
    evaluation = evaluate_edits(llama, [_request(llama)], method=None, config=EvalConfig(generation=False),
                                progress=False)
    assert math.isnan(evaluation.fluency) and evaluation.cases[0].generations == ()
    assert torch.isfinite(torch.tensor([evaluation.ES, evaluation.PS, evaluation.NS])).all()
