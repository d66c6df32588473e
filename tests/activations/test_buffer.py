"""MixingBuffer: activations on the fly, shuffled in a buffer, reproducible for (seed, start)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from tiny import WORDS, tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.buffer import MixingBuffer
from mechscope.activations.collect import keep_mask
from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="tiny-llama")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(1)
    return [" ".join(rng.choice(WORDS) for _ in range(150)) for _ in range(12)]


def _rows(tensor: torch.Tensor) -> Counter:
    return Counter(map(tuple, tensor.tolist()))


def test_an_epoch_gives_every_kept_token_once(model, texts):
    buffer = MixingBuffer(model, HOOK, texts, buffer_tokens=400, seq_len=16, model_batch_size=4)
    assert buffer.d_in == buffer.d_out == 64
    stream = torch.cat(list(buffer._stream(0)))  # the tokens before mixing, in row order
    n_kept = int(keep_mask(model, buffer.rows).sum())
    assert len(stream) == n_kept
    epoch = list(buffer.batches(50, seed=0))
    assert len(epoch) == n_kept // 50 and all(b.shape == (50, 64) for b in epoch)
    seen = _rows(torch.cat(epoch))
    assert not seen - _rows(stream) and sum((_rows(stream) - seen).values()) == n_kept % 50
    # mixed: the first batch is not the first 50 tokens of the stream
    assert _rows(epoch[0]) != _rows(stream[:50])
    # the stream's values are the model's
    rows = torch.randperm(len(buffer.rows.ids), generator=torch.Generator().manual_seed(0))[:4]
    batch = TokenBatch(buffer.rows.ids[rows], buffer.rows.attention_mask[rows])
    _, cache = model.run_with_cache(batch, names=HOOK)
    first = cache[HOOK][keep_mask(model, batch)]
    torch.testing.assert_close(stream[: len(first)], first)


def test_batches_are_reproducible_from_any_start(model, texts):
    buffer = MixingBuffer(model, HOOK, texts, buffer_tokens=400, seq_len=16, model_batch_size=4, n_tokens=1000)
    epoch = list(buffer.batches(50, seed=2))
    assert len(epoch) == 20
    assert all(torch.equal(a, b) for a, b in zip(epoch, buffer.batches(50, seed=2), strict=True))
    for start in (1, 9, 19):
        assert all(torch.equal(a, b) for a, b in zip(epoch[start:], buffer.batches(50, seed=2, start=start), strict=True))
    assert not torch.equal(torch.cat(epoch), torch.cat(list(buffer.batches(50, seed=3))))


def test_pairs_and_early_stop(model, texts):
    def boom(tensor, hook):
        raise AssertionError("block 1 ran")

    names = ["blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out"]
    buffer = MixingBuffer(model, names, texts, buffer_tokens=200, seq_len=16, n_tokens=300)
    with model.hooks(fwd=[("blocks.1.hook_resid_pre", boom)]):
        pairs = list(buffer.batches(30, seed=0))
        stream = torch.cat(list(buffer._stream(0)))
    assert len(pairs) == 10 and all(x.shape == y.shape == (30, 64) for x, y in pairs)
    target_of = {tuple(row[:64]): tuple(row[64:]) for row in stream.tolist()}
    for x, y in pairs:
        assert [target_of[tuple(row)] for row in x.tolist()] == [tuple(row) for row in y.tolist()]


@pytest.mark.parametrize(
    "kwargs, batch_size, message",
    [
        ({"buffer_tokens": 0}, 10, "buffer_tokens must be a positive integer"),
        ({"n_tokens": 0}, 10, "n_tokens must be a positive integer or None"),
        ({"buffer_tokens": 100}, 60, "at most half of buffer_tokens"),
    ],
)
def test_bad_arguments(model, texts, kwargs, batch_size, message):
    with pytest.raises(InputError, match=message):
        buffer = MixingBuffer(model, HOOK, texts[:2], seq_len=16, **kwargs)
        buffer.batches(batch_size)


def test_training_runs_on_the_fly_from_the_buffer_with_no_store(model, texts):
    from mechscope.sae import SAEConfig, TrainConfig, train_sae

    buffer = MixingBuffer(model, HOOK, texts, buffer_tokens=512, seq_len=16)
    cfg = SAEConfig(d_in=64, d_sae=128, architecture="topk", k=4, hook_name=HOOK)
    config = TrainConfig(total_steps=30, batch_size=128, lr=3e-3, init_batches=2)
    first = train_sae(cfg, buffer, config, progress=False)
    again = train_sae(cfg, MixingBuffer(model, HOOK, texts, buffer_tokens=512, seq_len=16), config, progress=False)
    assert first.history.mse[-5:].mean() < 0.85 * first.history.mse[:3].mean()  # it learns
    assert torch.equal(first.sae.W_dec, again.sae.W_dec)  # the model-driven stream is reproducible too
