"""The facts dataset (known_1000 layout) and CounterFact-layout requests."""

from __future__ import annotations

import json

import pytest
import torch

from mechscope.errors import InputError
from mechscope.facts import (
    RELATIONS,
    Fact,
    builtin_facts,
    known_facts,
    load_facts,
    load_requests,
    make_request,
    make_requests,
    save_facts,
    save_requests,
    subject_span,
)


def test_builtin_facts_are_well_formed():
    facts = builtin_facts()
    assert len(facts) == sum(len(r.pairs()) for r in RELATIONS.values()) > 700
    assert len({f.known_id for f in facts}) == len(facts)
    for fact in facts:
        assert fact.subject in fact.prompt and fact.template.replace("{}", fact.subject) == fact.prompt
        assert fact.attribute == fact.attribute.strip() and ":" not in fact.attribute
    assert len(builtin_facts(["capital"])) == len(RELATIONS["capital"].pairs())


def test_known_1000_layout_round_trip(tmp_path):
    record = {"known_id": 7, "subject": "Vinson Massif", "attribute": "Antarctica", "template": "{} is located in the "
              "continent of", "prediction": " Antarctica", "prompt": "Vinson Massif is located in the continent of",
              "relation_id": "P30"}
    path = tmp_path / "known_1000.json"
    path.write_text(json.dumps([record]))
    (fact,) = load_facts(path)
    assert (fact.known_id, fact.subject, fact.attribute, fact.relation_id) == (7, "Vinson Massif", "Antarctica", "P30")
    save_facts([fact], tmp_path / "again.json")
    assert load_facts(tmp_path / "again.json") == (fact,)
    lines = tmp_path / "facts.jsonl"
    lines.write_text(json.dumps({k: record[k] for k in ("known_id", "prompt", "subject", "attribute")}) + "\n")
    assert load_facts(lines)[0].template is None


@pytest.mark.parametrize(
    "record, message",
    [({"known_id": 1, "prompt": "Paris is in", "subject": "Rome", "attribute": "France"}, "does not occur in the prompt"),
     ({"known_id": 1, "prompt": "Paris is in", "subject": "Paris"}, "lacks attribute"),
     ({"known_id": "a", "prompt": "Paris is in", "subject": "Paris", "attribute": "France"}, "known_id"),
     ({"known_id": 1, "prompt": "Paris is in", "subject": "Paris", "attribute": " "}, "non-empty")],
)
def test_bad_fact_records(tmp_path, record, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(InputError, match=message):
        load_facts(path)


def test_known_facts_keep_what_the_model_predicts(tiny):
    facts = [Fact(known_id=i, prompt=f"the {s} is located in city of", subject=s, attribute=a)
             for i, (s, a) in enumerate([("eiffel tower", "paris"), ("cat", "rome"), ("dog", "berlin")])]
    known = known_facts(tiny, facts)
    with torch.no_grad():
        predicted = [int(tiny(f.prompt)[0, -1].argmax()) for f in facts]
    expected = [f for f, p in zip(facts, predicted) if tiny.tokenizer.decode([p]).strip() == f.attribute]
    assert [f.known_id for f in known.facts] == [f.known_id for f in expected]
    assert known.total == 3 and sum(n for _, n in known.by_relation.values()) == 3


def test_requests_follow_counterfact(tmp_path):
    facts = builtin_facts(["city_country", "capital"])
    requests = make_requests(facts, n=20, seed=3)
    assert len(requests) == 20
    by_prompt = {f.prompt: f for f in facts}
    for request in requests:
        rewrite = request.requested_rewrite
        assert rewrite.relation_id == "city_country"  # capitals have no neighbours: never requested
        assert rewrite.target_new != rewrite.target_true
        assert all(by_prompt[p].attribute == rewrite.target_true for p in request.neighborhood_prompts)
        assert all(by_prompt[p].attribute == rewrite.target_new for p in request.attribute_prompts)
        assert rewrite.subject not in " ".join(request.neighborhood_prompts)
        assert all(rewrite.subject in p for p in request.paraphrase_prompts + request.generation_prompts)
    save_requests(requests, tmp_path / "cf.json")
    data = json.loads((tmp_path / "cf.json").read_text())
    assert data[0]["requested_rewrite"]["target_new"] == {"str": requests[0].requested_rewrite.target_new}
    assert load_requests(tmp_path / "cf.json") == requests


def test_make_request_accepts_the_subject_written_in():
    request = make_request("The Eiffel Tower is in", "Eiffel Tower", "Rome", "Paris")
    assert request.requested_rewrite.prompt == "The {} is in"
    with pytest.raises(InputError, match="does not occur in the prompt"):
        make_request("The tower is in", "Eiffel Tower", "Rome", "Paris")
    with pytest.raises(InputError, match="nothing to change"):
        make_request("{} is in", "Paris", "France", "France")


def test_subject_span_on_a_word_tokenizer(tiny):
    assert subject_span(tiny, "the eiffel tower is located in city of", "eiffel tower") == range(1, 3)
    assert subject_span(tiny, "tower of the eiffel tower", "tower", after=5) == range(4, 5)
    with pytest.raises(InputError, match="does not occur"):
        subject_span(tiny, "the cat sat", "dog")
