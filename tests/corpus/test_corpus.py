"""Offline default corpus, reading text files, and fixed-length batches with a held-out split."""

from __future__ import annotations

import pytest
import torch

from mechscope.corpus import HELDOUT_EVERY, default_texts, read_text_files, token_batches
from mechscope.errors import InputError


def _rows(model, texts, **kw) -> list[tuple[int, ...]]:
    return [tuple(row) for batch in token_batches(model, texts, **kw) for row in batch.tolist()]


def test_default_corpus_ships_with_python():
    texts = default_texts()
    assert len(texts) > 50 and sum(map(len, texts)) > 200_000
    assert any("if_stmt" in text for text in texts)
    assert texts == default_texts()


def test_read_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("first file")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("second file")
    (tmp_path / "sub" / "skip.bin").write_bytes(b"\xff\xfe")
    (tmp_path / "empty.txt").write_text("  \n")
    assert read_text_files(tmp_path) == ["first file", "second file"]
    assert read_text_files([tmp_path / "a.txt"]) == ["first file"]
    with pytest.raises(InputError, match="no such file or directory"):
        read_text_files(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        read_text_files(tmp_path / "sub" / "skip.bin")


def test_batches_have_the_asked_shape(corpus_model, texts):
    batches = list(token_batches(corpus_model, texts, seq_len=16, batch_size=8))
    assert all(b.shape == (8, 16) for b in batches[:-1]) and 1 <= batches[-1].shape[0] <= 8
    assert all(b.dtype == torch.long for b in batches)


def test_split_is_deterministic_disjoint_and_independent_of_seed(corpus_model, texts):
    train = _rows(corpus_model, texts, seq_len=16, split="train")
    heldout = _rows(corpus_model, texts, seq_len=16, split="heldout")
    assert not set(train) & set(heldout)
    total = len(train) + len(heldout)
    assert total == (20 * 301) // 16  # 300 words and one EOS per document, packed
    assert abs(len(heldout) / total - 1 / HELDOUT_EVERY) < 0.06
    assert _rows(corpus_model, texts, seq_len=16, split="train") == train  # same seed, same order
    shuffled = _rows(corpus_model, texts, seq_len=16, split="train", seed=1, batch_size=3)
    assert shuffled != train and sorted(shuffled) == sorted(train)
    assert sorted(_rows(corpus_model, texts, seq_len=16, split="heldout", seed=5)) == sorted(heldout)


def test_bos_handling(corpus_model, texts):
    texts = texts[:4]
    plain = _rows(corpus_model, texts, seq_len=16)  # this tokenizer adds no BOS of its own
    assert all(len(row) == 16 and 1 not in row for row in plain)
    with_bos = _rows(corpus_model, texts, seq_len=16, prepend_bos=True)
    assert all(len(row) == 16 and row[0] == 1 for row in with_bos)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seq_len": 1}, "seq_len must be an integer of at least 2"),
        ({"batch_size": 0}, "batch_size must be an integer of at least 1"),
        ({"split": "test"}, "split must be one of train, heldout"),
        ({"seq_len": 65}, "exceeds corpus-words's context of 64"),
    ],
)
def test_bad_arguments(corpus_model, texts, kwargs, message):
    with pytest.raises(InputError, match=message):
        token_batches(corpus_model, texts[:1], **kwargs)


def test_too_little_text_says_so(corpus_model):
    with pytest.raises(InputError, match="no train rows of 32 tokens"):
        token_batches(corpus_model, ["word1 word2"], seq_len=32)


@pytest.mark.integration
def test_default_corpus_on_smollm2(smollm2):
    heldout = list(token_batches(smollm2, default_texts(), seq_len=128, batch_size=8, split="heldout"))
    rows = sum(b.shape[0] for b in heldout)
    assert 40 < rows < 150 and heldout[0].shape == (8, 128)
