"""The explain-and-score loop on word-indicator units, judged by a backend that follows
explanations literally: the true explanations must beat the controls, files follow
delphi's layout, and a rerun computes nothing."""

from __future__ import annotations

import json

import pytest
from autointerp_setup import INDICATOR_WORDS
from fake_backend import FakeBackend

from mechscope.autointerp import (
    ExampleConfig,
    build_records,
    explain_units,
    indicator_units,
    load_all,
    score_units,
    validate_scorers,
)
from mechscope.autointerp.explainers import EXPLAINERS
from mechscope.autointerp.run import random_explanation
from mechscope.errors import InputError

CONFIG = ExampleConfig(ctx_len=16, n_train_top=5, n_train_quantile=5, n_test=8, n_test_random=8, n_quantiles=4,
                       min_windows=5)
SCORERS = ["detection", "fuzzing", "simulation", "intruder"]


@pytest.fixture(scope="module")
def records_dir(store, tiny_model, tmp_path_factory):
    units, _ = indicator_units(tiny_model.tokenizer, words=INDICATOR_WORDS)
    out = tmp_path_factory.mktemp("run")
    build_records(store, units, range(3, units.n_units), out, tokenizer=tiny_model.tokenizer, config=CONFIG)
    return out


@pytest.fixture(scope="module")
def run(records_dir):
    records = load_all(records_dir)
    backend = FakeBackend()
    explanations = explain_units(records, backend=backend, out_dir=records_dir, batch=3)
    report = score_units(records, explanations, scorers=SCORERS, backend=backend, out_dir=records_dir, batch=3)
    return records, explanations, report, backend


def test_explanations_name_each_units_word(run):
    records, explanations, _, _ = run
    for r in records:
        assert explanations[r.name] == f'the word "{INDICATOR_WORDS[r.unit - 3]}"'


def test_true_explanations_beat_both_controls(run):
    records, _, report, _ = run
    for scorer in ("detection", "fuzzing", "simulation"):
        true, shuffled, rand = (report.values(scorer, c) for c in ("explanation", "shuffled", "random"))
        assert len(true) == len(records) == len(shuffled) == len(rand)
        assert min(true) > 0.95 and max(shuffled) < 0.8 and max(rand) < 0.8, (scorer, true, shuffled, rand)
        assert report.margin(scorer) > 0.3
    intruder = report.summary["intruder"]
    assert intruder["explanation"]["mean"] == 1.0 and intruder["random-key"]["mean"] < 0.6
    assert "shuffled" not in intruder  # it reads no explanation


def test_shuffled_controls_use_another_units_explanation(run):
    records, explanations, report, _ = run
    for s in report.scores:
        if s.control == "shuffled":
            assert s.explanation != explanations[s.unit] and s.explanation in explanations.values()
        if s.control == "random":
            assert s.explanation == random_explanation(s.unit, 0)


def test_files_follow_delphis_layout(run, records_dir):
    records, explanations, _, _ = run
    name = records[0].name
    assert json.loads((records_dir / "explanations" / f"{name}.txt").read_text()) == explanations[name]
    rows = json.loads((records_dir / "scores" / "detection" / f"{name}.txt").read_text())
    assert {"str_tokens", "activations", "distance", "activating", "prediction", "probability",
            "correct"} <= set(rows[0])
    assert len(rows) == 16 and sum(r["activating"] for r in rows) == 8
    for kind in ("fuzz", "fuzz-shuffled", "fuzz-random", "simulation", "detection-random", "intruder"):
        assert (records_dir / "scores" / kind / f"{name}.txt").exists(), kind


def test_a_rerun_asks_the_backend_nothing(run, records_dir):
    records, explanations, report, _ = run
    fresh = FakeBackend()
    again = explain_units(records, backend=fresh, out_dir=records_dir)
    report2 = score_units(records, again, scorers=SCORERS, backend=fresh, out_dir=records_dir)
    assert fresh.calls == 0 and again == explanations
    assert [s.score for s in report2.scores] == [s.score for s in report.scores]


def test_an_interrupted_run_scores_only_the_rest(run, records_dir):
    records, explanations, _, _ = run
    (records_dir / "autointerp" / "detection" / "random" / f"{records[1].name}.json").unlink()
    fresh = FakeBackend()
    score_units(records, explanations, scorers=["detection"], backend=fresh, out_dir=records_dir)
    assert fresh.calls == 16  # one unit's 16 held-out examples


def test_top_tokens_baseline_needs_no_backend(run):
    records, _, _, _ = run
    (explanation,) = EXPLAINERS["top-tokens"](records[:1], backend=None)
    assert explanation.text.startswith(f'the tokens "{INDICATOR_WORDS[0]}"')


def test_validation_puts_every_truth_on_top(records_dir, tiny_model):
    _, truths = indicator_units(tiny_model.tokenizer, words=INDICATOR_WORDS)
    check = validate_scorers(load_all(records_dir), truths[3:], backend=FakeBackend(),
                             scorers=["detection", "simulation", "intruder"])
    assert check.top_rate == {"detection": 1.0, "simulation": 1.0}
    assert min(check.margins["detection"]) > 0.1 and len(check.candidates) == len(truths[3:]) + 1
    figure = check.plot()
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == ["detection: truth on top 100%",
                                                                         "simulation: truth on top 100%"]


def test_bad_requests_say_what_to_do(run, records_dir):
    records, explanations, _, _ = run
    with pytest.raises(InputError, match="unknown scorers"):
        score_units(records, explanations, scorers=["nope"], backend=FakeBackend(), out_dir=records_dir)
    with pytest.raises(InputError, match="run explain first"):
        score_units(records, {}, scorers=["detection"], backend=FakeBackend(), out_dir=records_dir)
    with pytest.raises(InputError, match="embedder"):
        score_units(records, explanations, scorers=["embedding"], backend=None, out_dir=records_dir / "x")


def test_top_tokens_merge_spellings_and_name_whitespace():
    from mechscope.autointerp.records import UnitRecords

    r = UnitRecords(name="m_latent0", module="m", unit=0, examples=(), threshold=0.0, max_activation=1.0,
                    firing_rate=0.1, top_tokens=((" the", 5), ("\n", 4), ("the", 3), (" a", 2)),
                    promoted=(("ing", 1.0), (" ", 0.5)), suppressed=())
    (e,) = EXPLAINERS["top-tokens"]([r], backend=None)
    assert e.text == 'the tokens "the", "newline", "a" (then predicts "ing", "space")'
