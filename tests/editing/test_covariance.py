"""Key statistics: the right matrix, cached by model hash, layer and corpus settings; entity sentences mixed in."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import COVARIANCE

from mechscope.corpus import token_batches
from mechscope.editing import CovarianceConfig, edited, key_covariance, key_covariances
from mechscope.editing import covariance as module
from mechscope.editing.edit import LayerUpdate
from mechscope.errors import InputError
from mechscope.models.identity import weights_hash


def test_second_moment_of_the_keys(llama, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    stats = key_covariance(llama, 1, config=COVARIANCE, progress=False)
    ids = torch.cat(list(token_batches(llama, list(COVARIANCE.texts), seq_len=32, batch_size=8)))
    needed = -(-COVARIANCE.n_tokens // 32)  # whole rows until n_tokens are reached (no BOS here)
    _, cache = llama.run_with_cache(ids[:needed], names=["blocks.1.mlp.hook_post"])
    keys = cache["blocks.1.mlp.hook_post"].reshape(-1, llama.cfg.d_mlp).double()
    torch.testing.assert_close(stats.matrix.double(), keys.T @ keys / len(keys), atol=1e-5, rtol=1e-4)
    assert stats.n_tokens == len(keys) >= COVARIANCE.n_tokens


def test_cached_by_model_hash_and_layer(llama, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    runs = []
    compute = module._compute
    monkeypatch.setattr(module, "_compute", lambda model, layers, *a: runs.append(layers) or compute(model, layers, *a))
    first = key_covariances(llama, [0, 1], config=COVARIANCE, progress=False)
    again = key_covariance(llama, 1, config=COVARIANCE, progress=False)
    assert runs == [[0, 1]]  # both layers in one pass, then read back
    assert torch.equal(again.matrix, first[1].matrix) and again.seconds == pytest.approx(first[1].seconds, abs=1e-3)
    digest = weights_hash(llama)
    assert module.cache_path(digest, 1, COVARIANCE).is_file()
    assert module.cache_path(digest, 1, COVARIANCE).parent.name == digest
    update = LayerUpdate(layer=0, left=torch.ones(llama.cfg.d_mlp, 1), right=torch.ones(1, llama.cfg.d_model))
    with edited(llama, [update]):
        assert weights_hash(llama) != digest
        key_covariance(llama, 1, config=COVARIANCE, progress=False)
    assert runs == [[0, 1], [1]]
    assert weights_hash(llama) == digest


SENTENCES = ("the eiffel tower is in paris", "rome is the capital of italy", "a b")


def test_entity_sentences_mixed_in_by_weight(llama, tmp_path, monkeypatch):
    """The batched, padded moment of the entity sentences equals one sentence at a time, and
    C is the weighted mixture; the weight only re-mixes what is cached."""
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    config = dataclasses.replace(COVARIANCE, entity_weight=0.25, entity_texts=SENTENCES)
    mixed = key_covariance(llama, 1, config=config, progress=False)
    corpus = key_covariance(llama, 1, config=COVARIANCE, progress=False)
    keys = []
    for text in SENTENCES:  # the slow reference: each sentence alone, BOS dropped
        batch = llama.tokenize(text)
        _, cache = llama.run_with_cache(batch.ids, names=["blocks.1.mlp.hook_post"])
        keys.append(cache["blocks.1.mlp.hook_post"][0][batch.ids[0] != llama.tokenizer.bos_token_id])
    keys = torch.cat(keys).double()
    expected = 0.75 * corpus.matrix.double() + 0.25 * keys.T @ keys / len(keys)
    torch.testing.assert_close(mixed.matrix.double(), expected, atol=1e-5, rtol=1e-4)
    assert mixed.entity_tokens == len(keys) and mixed.n_tokens == corpus.n_tokens + len(keys)
    assert mixed.corpus != corpus.corpus
    runs = []
    monkeypatch.setattr(module, "_compute_entities", lambda *a: runs.append(a) or [])
    monkeypatch.setattr(module, "_compute", lambda *a: runs.append(a) or [])
    half = key_covariance(llama, 1, config=dataclasses.replace(config, entity_weight=0.5), progress=False)
    assert runs == []  # both parts read back from the cache
    torch.testing.assert_close(half.matrix.double(), 0.5 * corpus.matrix.double() + 0.5 * keys.T @ keys / len(keys),
                               atol=1e-5, rtol=1e-4)


def test_entity_sentences_hold_out_subjects():
    from mechscope.editing import entity_sentences
    from mechscope.facts import builtin_facts

    facts = builtin_facts()
    everything = entity_sentences()
    assert len(everything) == len(facts) and everything[0] == f"{facts[0].prompt} {facts[0].attribute}"
    held_out = entity_sentences(exclude_subjects=[facts[0].subject])
    assert not any(facts[0].subject in s for s in held_out if s.startswith(facts[0].prompt))
    assert len(held_out) == len(facts) - sum(f.subject == facts[0].subject for f in facts)
    with pytest.raises(InputError, match="no entity sentences"):
        entity_sentences(facts[:1], exclude_subjects=[facts[0].subject])


@pytest.mark.parametrize("field, value", [("entity_weight", 1.0), ("entity_weight", -0.1), ("entity_weight", True),
                                          ("entity_texts", ()), ("entity_texts", ["a"]), ("entity_texts", ("",))])
def test_entity_settings_checked(field, value):
    with pytest.raises(InputError, match=f"CovarianceConfig.{field}"):
        CovarianceConfig(**{field: value})
