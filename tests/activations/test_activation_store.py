"""The activation store: round trip, exclusions, resuming, early stopping, shuffled reads, refusals."""

from __future__ import annotations

import json
import random

import pytest
import torch
from tiny import WORDS, tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.collect import collect, keep_mask
from mechscope.activations.harvest import harvest
from mechscope.activations.manifest import MANIFEST, ModelIdentity, StoreMismatchError
from mechscope.activations.store import ActivationStore
from mechscope.corpus import token_rows
from mechscope.errors import HookPointError, InputError
from mechscope.hooks.tokens import TokenBatch

HOOK = "blocks.0.hook_resid_post"
SETTINGS = dict(n_tokens=1000, seq_len=16, batch_size=4, shard_tokens=250, progress=False)


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="tiny-llama")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(200)) for _ in range(30)]


@pytest.fixture(scope="module")
def reference(model, texts, tmp_path_factory):
    """One uninterrupted harvest that other tests compare against."""
    return harvest(model, HOOK, texts, tmp_path_factory.mktemp("ref"), **SETTINGS)


def _column(store: ActivationStore, name: str) -> torch.Tensor:
    return torch.cat([store.shard(i, [name])[name] for i in range(len(store.manifest["shards"]))])


def _assert_same_store(a: ActivationStore, b: ActivationStore) -> None:
    assert [s["tokens"] for s in a.manifest["shards"]] == [s["tokens"] for s in b.manifest["shards"]]
    for i in range(len(a.manifest["shards"])):
        left, right = a.shard(i), b.shard(i)
        assert left.keys() == right.keys()
        for name in left:
            assert torch.equal(left[name], right[name]), (i, name)


def test_round_trip_equals_run_with_cache_without_bos(model, texts, reference):
    assert len(reference) == 1000 and reference.complete and reference.d_in == 64
    rows = token_rows(model, texts, seq_len=16, prepend_bos=True)
    assert bool((rows.ids[:, 0] == model.tokenizer.bos_token_id).all())
    where = _column(reference, "locations").long()
    ids = _column(reference, "token_ids").long()
    # the first 1000 non-BOS tokens of the row stream, in order, each once
    keep = keep_mask(model, rows)
    assert torch.equal(where, keep.nonzero()[:1000])
    assert bool((where[:, 1] > 0).all()) and torch.equal(ids, rows.ids[where[:, 0], where[:, 1]])
    n_rows = int(where[:, 0].max()) + 1
    _, cache = model.run_with_cache(rows.ids[:n_rows], names=HOOK)
    torch.testing.assert_close(_column(reference, HOOK), cache[HOOK][where[:, 0], where[:, 1]], atol=1e-5, rtol=1e-5)
    manifest = json.loads((reference.path / MANIFEST).read_text())
    assert manifest["hooks"] == [{"name": HOOK, "width": 64}] and manifest["tokens"] == 1000
    assert manifest["settings"]["exclude_bos"] and manifest["corpus"]["texts"] == 30


def test_padding_is_excluded_and_bfloat16_stored(model, texts, tmp_path):
    short = [" ".join(text.split()[: 5 + i % 20]) for i, text in enumerate(texts * 3)]
    store = harvest(model, HOOK, short, tmp_path, n_tokens=300, seq_len=16, batch_size=4, shard_tokens=100,
                    pack=False, dtype="bfloat16", progress=False)
    rows = token_rows(model, short, seq_len=16, prepend_bos=True, pack=False)
    assert rows.has_padding
    where = _column(store, "locations").long()
    assert bool(rows.attention_mask[where[:, 0], where[:, 1]].bool().all())
    assert torch.equal(where, keep_mask(model, rows).nonzero()[:300])
    acts = _column(store, HOOK)
    assert acts.dtype == torch.bfloat16 and store.dtype == torch.bfloat16
    batch = TokenBatch(rows.ids[:8], rows.attention_mask[:8])
    _, cache = model.run_with_cache(batch, names=HOOK)
    first = int((where[:, 0] < 8).sum())
    expected = cache[HOOK][where[:first, 0], where[:first, 1]]
    torch.testing.assert_close(acts[:first].float(), expected, atol=0.02, rtol=0.01)


class Interrupt(Exception):
    pass


def test_interrupted_harvest_resumes_to_the_same_store(model, texts, reference, tmp_path):
    calls = 0

    def die_on_the_13th_batch(tensor, hook):
        nonlocal calls
        calls += 1
        if calls == 13:
            raise Interrupt

    with pytest.raises(Interrupt), model.hooks(fwd=[(HOOK, die_on_the_13th_batch)]):
        harvest(model, HOOK, texts, tmp_path, **SETTINGS)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert len(manifest["shards"]) == 2 and manifest["tokens"] == 500 and not manifest["complete"]
    assert manifest["position"]["offset"] > 0  # resuming starts inside a model batch
    # what a kill during the next write leaves: a temp file, a shard the manifest does not list
    (tmp_path / ".shard-00002.safetensors.tmp").write_bytes(b"partial")
    (tmp_path / "shard-00002.safetensors").write_bytes(b"renamed before the manifest was updated")
    resumed = harvest(model, HOOK, texts, tmp_path, **SETTINGS)
    _assert_same_store(resumed, reference)
    assert not list(tmp_path.glob(".*.tmp"))
    again = harvest(model, HOOK, texts, tmp_path, **SETTINGS)  # complete: nothing to do
    _assert_same_store(again, reference)


def test_a_larger_n_tokens_extends_a_finished_harvest(model, texts, reference, tmp_path):
    harvest(model, HOOK, texts, tmp_path, **{**SETTINGS, "n_tokens": 600})
    extended = harvest(model, HOOK, texts, tmp_path, **SETTINGS)
    assert [s["tokens"] for s in extended.manifest["shards"]] == [250, 250, 100, 250, 150]
    for name in (HOOK, "locations", "token_ids"):
        assert torch.equal(_column(extended, name), _column(reference, name))
    with pytest.raises(StoreMismatchError, match="already holds 1,000 tokens"):
        harvest(model, HOOK, texts, tmp_path, **{**SETTINGS, "n_tokens": 900})


def test_later_blocks_never_run(tiny, texts):
    """Every family: reading block 0 never computes block 1 or the logits."""

    def boom(tensor, hook):
        raise AssertionError(f"{hook.name} ran")

    last = tiny.cfg.n_layers - 1
    names = ["blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out"]
    rows = token_rows(tiny, texts[:4], seq_len=16, prepend_bos=True)
    batch = TokenBatch(rows.ids[:3], rows.attention_mask[:3])
    keep = keep_mask(tiny, batch)
    with tiny.hooks(fwd=[(f"blocks.{last}.hook_resid_pre", boom), ("hook_logits", boom)]):
        got = collect(tiny, names, batch, keep)
    _, cache = tiny.run_with_cache(batch, names=names)
    for name, acts in zip(names, got):
        torch.testing.assert_close(acts, cache[name][keep])
    assert not tiny._contexts  # every hook came off


def test_harvest_stops_early_too(model, texts, tmp_path):
    def boom(tensor, hook):
        raise AssertionError("block 1 ran")

    with model.hooks(fwd=[("blocks.1.hook_resid_pre", boom)]):
        store = harvest(model, HOOK, texts, tmp_path, n_tokens=100, seq_len=16, progress=False)
    assert len(store) == 100


def test_shuffled_reads_cover_every_token_once_and_are_reproducible(reference):
    store = ActivationStore.open(reference.path, mix_shards=2)
    stored = _column(store, HOOK)
    epoch = list(store.batches(100, seed=0))
    assert len(epoch) == 10 and all(b.shape == (100, 64) for b in epoch)
    assert sorted(map(tuple, torch.cat(epoch).tolist())) == sorted(map(tuple, stored.tolist()))
    # shuffled across a window of two shards, not read in order (position 1, right after
    # BOS, sees one token only: the same word there gives the same activation, so skip those)
    index: dict[tuple, list[int]] = {}
    for i, row in enumerate(stored.tolist()):
        index.setdefault(tuple(row), []).append(i)
    shards = [index[tuple(row)][0] // 250 for row in epoch[0].tolist() if len(index[tuple(row)]) == 1]
    assert len(set(shards)) == 2 and min(shards.count(s) for s in set(shards)) > 20
    assert all(torch.equal(a, b) for a, b in zip(epoch, store.batches(100, seed=0)))
    for start in (3, 7):  # 7 starts in the second window
        assert all(torch.equal(a, b) for a, b in zip(epoch[start:], store.batches(100, seed=0, start=start), strict=True))
    other = list(store.batches(100, seed=1))
    assert not torch.equal(torch.cat(other), torch.cat(epoch))
    assert len(list(store.batches(300))) == 3  # the last partial batch is dropped
    assert list(store.batches(100, start=10)) == []


def test_two_points_are_read_as_pairs(model, texts, tmp_path):
    names = ["blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out"]
    harvest(model, names, texts, tmp_path, n_tokens=300, seq_len=16, shard_tokens=100, progress=False)
    pairs = ActivationStore.open(tmp_path, target=names[1])
    assert (pairs.d_in, pairs.d_out, pairs.hook_names) == (64, 64, names)
    # each input row (unique except right after BOS) comes with its own target row
    target_of = {tuple(x): tuple(y) for x, y in zip(_column(pairs, names[0]).tolist(), _column(pairs, names[1]).tolist())}
    batches = list(pairs.batches(50, seed=3))
    assert len(batches) == 6
    for x, y in batches:
        assert [target_of[tuple(row)] for row in x.tolist()] == [tuple(row) for row in y.tolist()]
    single = ActivationStore.open(tmp_path)
    assert single.target is None and next(iter(single.batches(50))).shape == (50, 64)
    with pytest.raises(InputError, match="received target='blocks.0.hook_mlp_out'"):
        ActivationStore.open(tmp_path, target="blocks.0.hook_mlp_out")


def test_another_model_settings_or_corpus_is_refused(model, texts, reference, tmp_path):
    other_arch = HookedModel(tiny_hf_model("gpt2"), tiny_tokenizer(), name="tiny-gpt2")
    other_weights = HookedModel(tiny_hf_model("llama-gqa", seed=1), tiny_tokenizer(), name="tiny-llama-1")
    with pytest.raises(StoreMismatchError, match="holds activations of another model"):
        harvest(other_arch, HOOK, texts, reference.path, **SETTINGS)
    with pytest.raises(StoreMismatchError, match="other weights of the same architecture"):
        harvest(other_weights, HOOK, texts, reference.path, **SETTINGS)
    with pytest.raises(StoreMismatchError, match="seq_len: stored 16, asked 32"):
        harvest(model, HOOK, texts, reference.path, **{**SETTINGS, "seq_len": 32})
    with pytest.raises(StoreMismatchError, match="another corpus"):
        harvest(model, HOOK, texts[1:], reference.path, **SETTINGS)
    with pytest.raises(StoreMismatchError, match="another model"):
        reference.check_model(other_arch)
    reference.check_model(model)
    (tmp_path / "notes.txt").write_text("something else")
    with pytest.raises(InputError, match="is not empty and holds no manifest.json"):
        harvest(model, HOOK, texts, tmp_path, **SETTINGS)
    with pytest.raises(InputError, match="holds no manifest.json"):
        ActivationStore.open(tmp_path)


def test_the_same_weights_in_another_dtype_are_the_same_model(model):
    bf16 = HookedModel(tiny_hf_model("llama-gqa").to(torch.bfloat16), tiny_tokenizer(), name="bf16")
    assert ModelIdentity.of(model).matches(ModelIdentity.of(bf16))
    assert ModelIdentity.from_dict(ModelIdentity.of(model).to_dict()).matches(ModelIdentity.of(model))


@pytest.mark.parametrize(
    "hooks, kwargs, error, message",
    [
        ("blocks.0.hook_resid_pots", {}, HookPointError, "closest valid names: blocks.0.hook_resid_post"),
        ("blocks.0.attn.hook_pattern", {}, HookPointError, "dims start with 'batch pos'"),
        ([HOOK, HOOK], {}, InputError, "two distinct ones"),
        (HOOK, {"n_tokens": 0}, InputError, "n_tokens must be an integer of at least 1"),
        (HOOK, {"dtype": "float16"}, InputError, "dtype must be one of float32, bfloat16"),
        (HOOK, {"n_tokens": 10**6}, InputError, "fewer than n_tokens=1,000,000"),
    ],
)
def test_bad_arguments(model, texts, tmp_path, hooks, kwargs, error, message):
    with pytest.raises(error, match=message):
        harvest(model, hooks, texts, tmp_path / "store", **{**SETTINGS, **kwargs})
    assert not (tmp_path / "store").exists()


@pytest.mark.integration
def test_smollm2_harvest_excludes_the_attention_sink(smollm2, tmp_path):
    from mechscope.corpus import default_texts

    hook = "blocks.15.hook_resid_post"
    store = harvest(smollm2, hook, default_texts(), tmp_path, n_tokens=2000, seq_len=64, batch_size=8,
                    shard_tokens=700, progress=False)
    assert len(store) == 2000 and store.d_in == 576
    acts, where = _column(store, hook), _column(store, "locations").long()
    rows = token_rows(smollm2, default_texts(), seq_len=64, prepend_bos=True)
    _, cache = smollm2.run_with_cache(rows.ids[:4], names=hook)
    first = int((where[:, 0] < 4).sum())
    torch.testing.assert_close(acts[:first], cache[hook][where[:first, 0], where[:first, 1]], atol=1e-3, rtol=1e-4)
    assert float(cache[hook][:, 0].norm(dim=-1).min()) > 5000  # the sink, on BOS, is left out
    assert bool((where[:, 1] > 0).all())
    # a few tokens right after BOS are secondary sinks (about 1 in 6,000 here); not excluded
    assert float((acts.norm(dim=-1) > 1000).float().mean()) < 0.002
    x = next(iter(store.batches(256)))
    assert x.shape == (256, 576)
