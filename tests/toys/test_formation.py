"""Induction-head formation: its data, its measures (on the hand-compiled induction model,
whose heads are known), locating a phase change, and (slow) a quick run where it happens."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.toys import compiled_induction_model
from mechscope.toys.formation import (
    FormationConfig,
    analyse_formation,
    formation_model,
    halfway_step,
    head_pattern_scores,
    icl_score,
    repeats_batch,
    steepest_drop_step,
    text_batch,
    train_formation,
)


def test_repeats_are_periodic_with_random_periods():
    ids = repeats_batch(200, 48, seed=0)
    assert ids.shape == (200, 48) and ids.min() >= 1 and ids.max() <= 63
    periods = set()
    for row in ids:
        period = next(p for p in range(9, 25) if torch.equal(row[p:], row[:-p]))
        periods.add(period)
    assert len(periods) > 10  # no single offset finds the earlier occurrence
    assert not torch.equal(repeats_batch(4, 48, seed=0, held_out=True), repeats_batch(4, 48, seed=0))


@pytest.mark.slow  # parses the standard library's sources: about 8 s alone, a minute on a busy machine
def test_text_windows_come_from_disjoint_splits():
    train, held = text_batch(8, 64, seed=0), text_batch(8, 64, seed=0, held_out=True)
    assert train.shape == held.shape == (8, 64) and train.max() < 96
    assert not torch.equal(train, held)


def test_icl_score_and_phase_locating_on_planted_curves():
    loss = torch.cat([torch.full((10,), 4.0), torch.full((40,), 1.0)])
    assert abs(icl_score(loss, 5, 40) - (-3.0)) < 1e-6
    steps = [0, 100, 200, 300, 400, 500]
    assert halfway_step(steps, [0.0, 0.01, 0.05, 0.7, 0.8, 0.8]) == 300
    assert halfway_step(steps, [0.1] * 6) is None
    assert steepest_drop_step(steps, [4.0, 3.9, 3.8, 1.5, 1.4, 1.4], window=1) == 300


def test_head_scores_find_the_compiled_model_heads():
    compiled = compiled_induction_model()
    scores = head_pattern_scores(compiled.model, seq_len=12)
    layer, head = compiled.previous_token_head
    assert scores["previous_token"][layer, head] > 0.9
    layer, head = compiled.induction_head
    assert scores["induction"][layer, head] > 0.9
    assert scores["induction"][0].max() < 0.3


def test_attention_only_model_has_zero_frozen_mlps():
    model = formation_model(FormationConfig.quick())
    for block in model.hf_model.transformer.h:
        assert all((p == 0).all() and not p.requires_grad for p in block.mlp.parameters())
    with_mlp = formation_model(FormationConfig.quick(attention_only=False))
    assert all(p.requires_grad for p in with_mlp.hf_model.transformer.h[0].mlp.parameters())


def test_a_few_steps_record_every_measure(tmp_path):
    config = FormationConfig.quick(steps=4, eval_every=2, n_eval=4)
    run = train_formation(config, checkpoint_dir=tmp_path, progress=False)
    h = run.history
    assert h["eval_step"] == [0.0, 2.0, 4.0] and len(h["loss"]) == 4
    assert "induction.1.0" in h and len(h["induction.1.0"]) == 3
    analysis = analyse_formation([run])
    assert analysis.labels == ("attention-only",) and analysis.steps["attention-only"] == 4
    again = train_formation(config, checkpoint_dir=tmp_path, progress=False)
    assert again.resumed_from == 4 and again.history["eval_step"] == h["eval_step"]


def test_config_names_the_bad_field():
    with pytest.raises(InputError, match="FormationConfig.data"):
        FormationConfig(data="wiki")


@pytest.mark.slow
def test_quick_attention_only_run_forms_induction_heads_in_a_phase_change():
    run = train_formation(FormationConfig.quick(), checkpoint_dir=None, progress=False)
    a = analyse_formation([run])
    label = "attention-only"
    assert a.final[label]["induction_score"] > 0.5 and a.final[label]["icl_score"] < -2
    assert a.spread[label] is not None and a.spread[label] <= 0.2 * 600
