"""Probes read through a tiny model: a planted direction, a layer sweep, files, interventions."""

from __future__ import annotations

import json
import random

import pytest
import torch
from tiny import tiny_hf_model, tiny_task, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.positions import Position
from mechscope.errors import InputError
from mechscope.probes import (ProbeConfig, ProbeData, load_probe_data, make_probe_data, probe, probe_intervention,
                              probe_layers)

CLASS_A = ("cat", "dog", "mary", "john", "tom")
CLASS_B = ("paris", "rome", "berlin", "red", "blue")
TEMPLATES = ("the {} sat on the mat", "when {} went to the store", "the big {} is in the city", "one two {} three")
PLANTED = [5, 40]
FAST = ProbeConfig(penalties=(1e-2, 1.0))


@pytest.fixture(scope="module")
def planted() -> HookedModel:
    """A tiny Llama whose embeddings carry the class of CLASS_A/CLASS_B words on two channels."""
    model = HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="planted")
    embed = model.hf_model.get_input_embeddings().weight
    with torch.no_grad():
        for sign, words in ((4.0, CLASS_A), (-4.0, CLASS_B)):
            for word in words:
                embed[model.tokenizer.convert_tokens_to_ids(word), PLANTED] = sign
    return model


def _word_data(n: int = 120, seed: int = 0) -> ProbeData:
    rng = random.Random(seed)
    texts, labels, positions = [], [], []
    for i in range(n):
        word = rng.choice((CLASS_A, CLASS_B)[i % 2])
        texts.append(rng.choice(TEMPLATES).format(word))
        labels.append(i % 2)
        positions.append(Position(rule="word", word=word))
    return ProbeData(name="planted", texts=tuple(texts), labels=torch.tensor(labels), positions=tuple(positions),
                     classes=("a", "b"))


def test_a_planted_direction_is_read_and_sparse_probing_picks_its_channels(planted):
    data = _word_data()
    full = probe(planted, data, hook_name="blocks.0.hook_resid_post", config=FAST)
    # Ten words carry the labels, so a shuffled-label probe's test accuracy varies by word (wide around 0.5).
    assert full.test_score > 0.95 and full.shuffled_score < 0.75
    sparse = probe(planted, data, hook_name="hook_embed", k=2, config=FAST)
    assert sparse.features == tuple(PLANTED) and sparse.test_score == 1.0
    assert full.selectivity == full.test_score - full.control_score


def test_layer_sweep_probes_each_layer_and_plots(planted):
    sweep = probe_layers(planted, _word_data(), layers=[0, 1], config=FAST)
    assert [r.hook_name for r in sweep.results] == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    assert sweep.best.test_score > 0.95
    figure = sweep.plot()
    assert len(figure.axes) == 2
    assert json.loads(json.dumps(sweep.to_dict()))["results"][0]["metric"] == "accuracy"
    with pytest.raises(InputError, match=r"layers must be integers in \[0, 2\)"):
        probe_layers(planted, _word_data(), layers=[2])


def test_files_give_classes_or_values(tmp_path, planted):
    jsonl = tmp_path / "words.jsonl"
    rows = [{"text": t.format(w), "label": label, "position": f"word:{w}"}
            for t in TEMPLATES for label, words in (("a", CLASS_A), ("b", CLASS_B)) for w in words]
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    data = make_probe_data(str(jsonl), planted)
    assert data.classes == ("a", "b") and data.positions[0].name == "word:cat" and len(data) == 40
    assert probe(planted, data, hook_name="hook_embed", config=FAST).test_score == 1.0
    csv = tmp_path / "values.csv"
    csv.write_text("text,value,type\nthe cat sat,1.5,cat\nthe dog sat,-2,dog\none two three,3,x\n")
    values = load_probe_data(csv)
    assert values.classes == () and values.labels.tolist() == [1.5, -2.0, 3.0] and values.types == ("cat", "dog", "x")


@pytest.mark.parametrize("content, message", [
    ('{"text": "a b", "label": "x", "value": 1}\n{"text": "c", "label": "y"}\n', "either a class 'label' or a"),
    ('{"text": "a b", "label": "x"}\n{"text": "c", "label": "x"}\n', "a probe needs at least two classes"),
    ('{"text": "a", "label": "x", "position": "word:"}\n{"text": "c", "label": "y"}\n', "line 1: Position.word"),
    ('{"text": "a", "labels": "x"}\n{"text": "c", "label": "y"}\n', "line 1: expected a non-empty 'text'"),
    ('{"text": "a", "value": "many"}\n{"text": "c", "value": 2}\n', "'value' must be a finite number"),
    ("not json\n", "line 1: not valid JSON"),
])
def test_bad_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_probe_data(path)


def test_unknown_dataset_names_suggest_the_closest():
    with pytest.raises(InputError, match="did you mean 'sva-number'"):
        make_probe_data("sva-numbr", None)


def test_projecting_out_the_logit_difference_direction_removes_the_metric():
    """Before a bias-free RMSNorm and unembedding, the logit difference is x·(g ⊙ ΔW_U)/rms(x):
    projecting out that direction makes it exactly zero; random directions barely move it."""
    model = HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama")
    task = tiny_task(model)
    gain = model.adapter.norm_weight(model.adapter.norm(None, "ln_final")).detach()
    delta = model.W_U[:, task.answers] - model.W_U[:, task.wrong]
    check = probe_intervention(model, task.subset(slice(0, 1)), gain * delta[:, 0],
                               hook_name="blocks.1.hook_resid_post", mode="ablate", n_random=8)
    assert abs(check.effect + check.baseline) < 1e-4 and abs(check.baseline) > 0.1
    assert check.random_effects.abs().mean() < 0.3 * abs(check.effect) and abs(check.z) > 3
    added = probe_intervention(model, task.subset(slice(0, 1)), gain * delta[:, 0], hook_name=
                               "blocks.1.hook_resid_post", mode="add", alpha=20.0, n_random=4)
    assert added.effect > 0 and added.effect > added.random_effects.max()
    assert len(check.plot().axes) == 1


def test_interventions_refuse_what_they_cannot_do():
    model = HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama")
    task = tiny_task(model)
    with pytest.raises(InputError, match="mode must be one of"):
        probe_intervention(model, task, torch.ones(64), hook_name="blocks.0.hook_resid_post", mode="flip")
    with pytest.raises(InputError, match="direction is zero"):
        probe_intervention(model, task, torch.zeros(64), hook_name="blocks.0.hook_resid_post")
    with pytest.raises(InputError, match="d_model-wide point"):
        probe_intervention(model, task, torch.ones(64), hook_name="blocks.0.mlp.hook_post")


@pytest.mark.integration
def test_built_in_datasets_on_smollm2_are_balanced_seeded_and_read_their_words(smollm2):
    from mechscope.activations.positions import read_positions
    from mechscope.probes import DATASETS

    for name in DATASETS:
        data = make_probe_data(name, smollm2, n=16, seed=3)
        again = make_probe_data(name, smollm2, n=16, seed=3)
        assert data.texts == again.texts and torch.equal(data.labels, again.labels) and len(data) == 16
        if data.classes:
            counts = torch.bincount(data.labels, minlength=len(data.classes))
            assert counts.max() - counts.min() <= 1, name
        read = read_positions(smollm2, "blocks.0.hook_resid_post", data.texts, data.positions)
        if name in ("country-city", "entity-kind", "number-value"):
            assert [t.strip() for t in read.tokens] == list(data.types), name
    subject = make_probe_data("sva-number", smollm2, n=8, at="subject")
    read = read_positions(smollm2, "blocks.0.hook_resid_post", subject.texts, subject.positions)
    assert [t.strip() for t in read.tokens] == list(subject.types)
