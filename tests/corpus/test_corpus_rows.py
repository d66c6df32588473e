"""token_rows: all rows of a split with their mask, packed or one document per row."""

from __future__ import annotations

import torch

from mechscope.corpus import token_batches, token_rows

EOS, PAD, BOS = 2, 0, 1


def test_packed_rows_are_token_batches_rows(corpus_model, texts):
    rows = token_rows(corpus_model, texts, seq_len=16, seed=3, prepend_bos=True)
    expected = torch.cat(list(token_batches(corpus_model, texts, seq_len=16, batch_size=5, seed=3, prepend_bos=True)))
    assert torch.equal(rows.ids, expected) and not rows.has_padding


def test_unpacked_rows_hold_one_document_each_padded_at_the_end(corpus_model, texts):
    docs = [" ".join(text.split()[: 10 + 7 * i]) for i, text in enumerate(texts)]
    train = token_rows(corpus_model, docs, seq_len=16, pack=False, prepend_bos=True)
    heldout = token_rows(corpus_model, docs, seq_len=16, pack=False, prepend_bos=True, split="heldout")
    assert train.has_padding
    tokens = 0
    for rows in (train, heldout):
        assert bool((rows.ids[:, 0] == BOS).all())
        lengths = rows.attention_mask.sum(1)
        for ids, mask, length in zip(rows.ids, rows.attention_mask, lengths):
            assert bool(mask[:length].all()) and not bool(mask[length:].any())
            assert bool((ids[length:] == PAD).all())
            body = ids[1:length].tolist()
            assert EOS not in body[:-1]  # a document's end can only close a row
        tokens += int(lengths.sum()) - len(rows.ids)
    assert tokens == sum(10 + 7 * i + 1 for i in range(len(texts)))  # every word and EOS once
    again = token_rows(corpus_model, docs, seq_len=16, pack=False, prepend_bos=True, seed=1)
    assert sorted(map(tuple, again.ids.tolist())) == sorted(map(tuple, train.ids.tolist()))
