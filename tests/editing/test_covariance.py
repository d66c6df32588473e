"""Key statistics: the right matrix, cached by model hash, layer and corpus settings."""

from __future__ import annotations

import pytest
import torch
from helpers import COVARIANCE

from mechscope.corpus import token_batches
from mechscope.editing import edited, key_covariance, key_covariances
from mechscope.editing import covariance as module
from mechscope.editing.edit import LayerUpdate
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
