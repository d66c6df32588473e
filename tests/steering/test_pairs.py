"""Contrastive pairs: files, built-in generators."""

from __future__ import annotations

import json

import pytest

from mechscope.errors import InputError
from mechscope.steering import PAIRS, ContrastPairs, load_pairs, make_pairs


def test_pairs_files_in_jsonl_and_csv(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("\n".join(json.dumps({"positive": f"good {i}", "negative": f"bad {i}"}) for i in range(3)))
    csv = tmp_path / "p.csv"
    csv.write_text("positive,negative\ngood 0,bad 0\n\"good, 1\",bad 1\n")
    assert make_pairs(str(jsonl), None).positive == ("good 0", "good 1", "good 2")
    pairs = load_pairs(csv)
    assert pairs.positive == ("good 0", "good, 1") and pairs.name == "p" and len(pairs.digest) == 16


@pytest.mark.parametrize("content, suffix, message", [
    ('{"positive": "a"}\n', ".jsonl", "line 1: expected exactly 'positive' and 'negative'"),
    ("not json\n", ".jsonl", "not valid JSON Lines"), ("", ".jsonl", "holds no pairs"),
    ("positive,negative\na,\n", ".csv", "prompt 1 is ''"),
    ('{"positive": "a", "negative": " "}\n', ".jsonl", "must be non-empty text"),
])
def test_bad_pairs_files_say_what_is_wrong(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_pairs(path)


def test_unknown_pairs_suggest_the_closest():
    with pytest.raises(InputError, match="did you mean 'weddings'"):
        make_pairs("wedings", None)
    with pytest.raises(InputError, match="as many negative prompts"):
        ContrastPairs(name="x", positive=("a", "b"), negative=("c",))


def test_topic_pairs_are_seeded_and_differ_in_their_topic():
    pairs = make_pairs("weddings", None, n=12, seed=4)
    assert pairs == make_pairs("weddings", None, n=12, seed=4) and len(pairs) == 12
    assert all("wedding" in p or "bride" in p or "married" in p for p in pairs.positive)
    assert not any("wedding" in q for q in pairs.negative)


@pytest.mark.integration
def test_agreement_pairs_flip_only_the_subjects_number(smollm2):
    pairs = make_pairs("sva-plural", smollm2, n=8)
    assert set(PAIRS) >= {"weddings", "sentiment", "sva-plural"}
    for plural, singular in zip(pairs.positive, pairs.negative):
        a, b = plural.split(), singular.split()
        assert len(a) == len(b) and [x != y for x, y in zip(a, b)] == [False, True] + [False] * (len(a) - 2)
