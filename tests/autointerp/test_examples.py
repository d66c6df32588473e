"""Windows and example records from a store: contexts rebuilt exactly, kinds disjoint, resumable."""

from __future__ import annotations

import pytest
import torch
from autointerp_setup import HOOK, INDICATOR_WORDS

from mechscope.autointerp import ExampleConfig, build_records, indicator_units, load_all, neuron_units
from mechscope.autointerp.records import ACTIVATING, load_records, records_path
from mechscope.autointerp.windows import WindowIndex, window_maxima
from mechscope.errors import InputError

CONFIG = ExampleConfig(ctx_len=16, n_train_top=5, n_train_quantile=5, n_train_hard_negatives=0, n_test=8,
                       n_test_random=8, n_quantiles=4, min_windows=5)


def _column(store, name):
    return torch.cat([store.shard(i, [name])[name] for i in range(len(store.manifest["shards"]))])


def test_windows_stay_inside_rows_and_cover_the_stream(store):
    index = WindowIndex.of(store, ctx_len=16)
    rows = _column(store, "locations")[:, 0]
    assert int(index.lengths.sum()) == len(store) and int(index.lengths.max()) == 16
    grid = index.token_grid(range(index.n_windows))
    for w in range(index.n_windows):
        members = grid[w][grid[w] >= 0]
        assert len(set(rows[members].tolist())) == 1  # one row per window
        assert torch.equal(members, torch.arange(int(index.starts[w]), int(index.starts[w]) + len(members)))
    # 40 tokens per row: windows of 16, 16, 8
    assert index.lengths[:3].tolist() == [16, 16, 8]


def test_window_maxima_equal_a_direct_computation(store, tiny_model):
    units = neuron_units(tiny_model, HOOK)
    index = WindowIndex.of(store, ctx_len=16)
    peaks = window_maxima(store, units, [3, 40], index)
    acts = _column(store, HOOK)[:, [3, 40]]
    for w in (0, 5, index.n_windows - 1):
        start, n = int(index.starts[w]), int(index.lengths[w])
        assert torch.allclose(peaks[w], acts[start : start + n].max(0).values)


@pytest.fixture(scope="module")
def built(store, tiny_model, tmp_path_factory):
    units, truths = indicator_units(tiny_model.tokenizer, words=INDICATOR_WORDS)
    out = tmp_path_factory.mktemp("gt")
    result = build_records(store, units, range(units.n_units), out, tokenizer=tiny_model.tokenizer, config=CONFIG)
    return units, truths, out, result


def test_indicator_records_mark_exactly_their_word(built):
    units, truths, out, result = built
    # the tiny vocabulary has no digits, capitals or Python keywords but "and", "in", "is"
    assert {name for name, _ in result.skipped} >= {units.unit_name(0), units.unit_name(1)}
    records = [r for r in load_all(out) if r.unit >= 3]
    assert len(records) == len(INDICATOR_WORDS)
    for r in records:
        word = INDICATOR_WORDS[r.unit - 3]
        assert truths[r.unit] == f'the word "{word}"'
        for e in r.examples:
            on = [t.strip() for t, a in zip(e.str_tokens, e.activations) if a > r.threshold]
            assert set(on) <= {word}
            assert bool(on) == e.activating, (e.kind, e.str_tokens)
        assert len(r.of_kind("train_top")) == 5 and len(r.of_kind("test_activating")) == 8
        assert len(r.of_kind("test_random")) == 8 and r.top_tokens[0][0].strip() == word


def test_train_and_test_examples_are_different_windows(built):
    _, _, out, _ = built
    for r in load_all(out):
        texts = [e.text for e in r.examples]
        train = {e.text for e in r.examples if e.kind.startswith("train")}
        test = [e.text for e in r.examples if e.kind.startswith("test")]
        assert not train & set(test), r.name
        assert len(texts) == len(r.examples)


def test_records_round_trip_and_rebuild_is_skipped(built, store, tiny_model):
    units, _, out, _ = built
    path = records_path(out, units.unit_name(3))
    before = path.stat().st_mtime_ns
    again = build_records(store, units, range(units.n_units), out, tokenizer=tiny_model.tokenizer, config=CONFIG)
    assert path.stat().st_mtime_ns == before and units.unit_name(3) in again.kept and not again.built
    r = load_records(path)
    assert sum(e.kind in ACTIVATING for e in r.examples) == 18


def test_other_settings_are_refused(built, store, tiny_model):
    units, _, out, _ = built
    with pytest.raises(InputError, match="another config"):
        build_records(store, units, [3], out, tokenizer=tiny_model.tokenizer,
                      config=ExampleConfig(ctx_len=8, min_windows=5))


def test_neurons_fire_above_a_fraction_of_their_maximum(store, tiny_model, tmp_path):
    units = neuron_units(tiny_model, HOOK)
    result = build_records(store, units, [0, 1], tmp_path, tokenizer=tiny_model.tokenizer, config=CONFIG)
    for r in load_all(tmp_path):
        assert abs(r.threshold - 0.3 * r.max_activation) < 1e-5
        assert all(max(e.activations) <= r.threshold for e in r.of_kind("test_random"))
        assert all(max(e.activations) > r.threshold for e in r.of_kind("test_activating"))
        assert r.promoted and len(r.promoted) == 10  # W_out @ W_U through the final norm
        # held-out activating examples spread over the quantiles, highest quantile first in each round
        test = r.of_kind("test_activating")
        assert sorted({e.quantile for e in test}) == [1, 2, 3, 4]
        peaks = {q: max(max(e.activations) for e in test if e.quantile == q) for q in (1, 4)}
        assert min(max(e.activations) for e in r.of_kind("train_top")) >= peaks[1] >= peaks[4]
    assert result.scanned_tokens == 3000


def test_bad_input_names_the_field(store, tiny_model, tmp_path):
    with pytest.raises(InputError, match="ctx_len"):
        ExampleConfig(ctx_len=0)
    with pytest.raises(InputError, match="embedder"):
        build_records(store, neuron_units(tiny_model, HOOK), [0], tmp_path, tokenizer=tiny_model.tokenizer,
                      config=ExampleConfig(n_test_hard_negatives=2))
    with pytest.raises(InputError, match=r"\[0, 96\)"):
        neuron_units(tiny_model, HOOK).check_units([96])


def _bag_of_words(texts):
    """A stand-in embedder: counts of each vocabulary word (texts of the tiny tokenizer run together)."""
    from tiny import WORDS

    return torch.tensor([[float(t.count(w)) for w in WORDS] for t in texts])


def test_hard_negatives_stay_off_and_lie_nearest_the_top_examples(store, tiny_model, tmp_path):
    from fake_backend import FakeBackend

    from mechscope.autointerp.explainers import EXPLAINERS
    from mechscope.autointerp.prompts import CONTRAST_HEADER

    units, _ = indicator_units(tiny_model.tokenizer, words=INDICATOR_WORDS)
    config = ExampleConfig(ctx_len=16, n_train_top=5, n_train_quantile=0, n_train_hard_negatives=3,
                           n_test_hard_negatives=2, n_test=4, n_test_random=4, min_windows=5, hard_negative_pool=150)
    build_records(store, units, [3], tmp_path, tokenizer=tiny_model.tokenizer, config=config,
                  embedder=_bag_of_words)
    (r,) = load_all(tmp_path)
    hard, randoms = r.of_kind("train_hard_negative", "test_hard_negative"), r.of_kind("test_random")
    assert len(hard) == 5 and all(max(e.activations) == 0 for e in hard)
    top = torch.nn.functional.normalize(_bag_of_words([e.text for e in r.of_kind("train_top")]), dim=-1).mean(0)

    def similarity(examples):
        return (torch.nn.functional.normalize(_bag_of_words([e.text for e in examples]), dim=-1) @ top).mean()

    assert similarity(hard) > similarity(randoms)
    (explanation,) = EXPLAINERS["contrastive"]([r], backend=FakeBackend())
    assert explanation.text == f'the word "{INDICATOR_WORDS[0]}"'
    from mechscope.autointerp.prompts import explain_prompt

    assert CONTRAST_HEADER in explain_prompt(["a"], ["b"]).messages[-1][1]
