"""Facts, tracing and ROME on smollm2-135m (the two integration tests of factual recall).

Seen on the development machine: smollm2-135m knows 386 of the 793 built-in facts, and
ROME at layer 4 turns the Eiffel Tower's city into Rome (p 0.70 for " Paris" before).
"""

from __future__ import annotations

import pytest
import torch

from mechscope.editing import CovarianceConfig, RomeConfig, edit_model, edited
from mechscope.facts import builtin_facts, known_facts, make_request, subject_span

pytestmark = pytest.mark.integration

EIFFEL = "The Eiffel Tower is located in the city of"


def test_known_facts_and_subject_spans(smollm2):
    known = known_facts(smollm2, builtin_facts())
    assert abs(len(known.facts) - 386) <= 8  # 386 seen; a few borderline facts may flip with the BLAS
    for fact in builtin_facts()[::7]:
        span = subject_span(smollm2, fact.prompt, fact.subject)
        ids = smollm2.to_tokens(fact.prompt)[0, span.start : span.stop]
        assert smollm2.tokenizer.decode(ids).strip() == fact.subject


def test_rome_moves_the_eiffel_tower(smollm2, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    request = make_request("The {} is located in the city of", "Eiffel Tower", "Rome", model=smollm2)
    assert request.requested_rewrite.target_true == "Paris"
    config = RomeConfig(layer=4, covariance=CovarianceConfig(n_tokens=4096, corpus="default"))
    edit = edit_model(smollm2, [request], method="rome", config=config)
    rome, paris = (smollm2.to_tokens(t)[0, 0] for t in (" Rome", " Paris"))
    with edited(smollm2, edit), torch.no_grad():
        probs = smollm2(EIFFEL)[0, -1].softmax(-1)
        assert int(probs.argmax()) == rome and probs[paris] < 0.1
    with torch.no_grad():
        assert int(smollm2(EIFFEL)[0, -1].argmax()) == paris
