"""OV scores: copying, copy suppression and successor heads, on toys built by hand, and the
fast path against a reference that runs the model's own norm modules."""

from __future__ import annotations

import pytest
import torch
from heads_toy import COPIER, SUPPRESSOR, ov_toy

from mechscope.heads import head_roles, ordinal_sequences, ov_rank_scores, repeated_tokens
from mechscope.heads.ov import strict_top


def _others(scores: torch.Tensor, *keep: tuple[int, int]) -> torch.Tensor:
    mask = torch.ones_like(scores, dtype=torch.bool)
    for layer, head in keep:
        mask[layer, head] = False
    return scores[mask]


@pytest.mark.parametrize("arch", ["llama-mha", "llama-gqa", "qwen2-gqa", "mistral-gqa"])
def test_built_copier_and_suppressor_are_found(arch):
    roles = head_roles(ov_toy(arch), n_seqs=4, seq_len=20)
    assert roles.copying[COPIER] == 1.0
    assert roles.copy_suppression[SUPPRESSOR] == 1.0
    assert roles.copying[SUPPRESSOR] == 0.0 and roles.copy_suppression[COPIER] == 0.0
    # Every other head has a random OV circuit: near chance (1 / n_candidates ≈ 0.015).
    assert _others(roles.copying, COPIER).max() < 0.15
    assert _others(roles.copy_suppression, SUPPRESSOR).max() < 0.15
    assert abs(_others(roles.copying, COPIER).mean() - roles.baselines["copying"]) < 0.05


def test_built_successor_head_is_found():
    roles = head_roles(ov_toy("llama-gqa", successor=True), n_seqs=4, seq_len=20)
    assert roles.successor_sequences == ("number words",)  # one .. seven in the tiny vocabulary
    assert roles.n_successor_pairs == 6
    assert roles.successor[COPIER] == 1.0
    assert roles.copying[COPIER] < 0.3  # it moves on to the next token instead of copying
    assert _others(roles.successor, COPIER).max() < 0.5  # chance is 1/7; 2 of 6 pairs happen


def test_a_plain_copier_is_no_successor_head():
    roles = head_roles(ov_toy("llama-gqa"), n_seqs=2, seq_len=8)
    assert roles.successor[COPIER] == 0.0


def test_ordinal_sequences_keep_single_token_items(tokenizer):
    (seq,) = ordinal_sequences(tokenizer)
    assert seq.texts == (" one", " two", " three", " four", " five", " six", " seven")
    assert seq.pairs == tuple((i, i + 1) for i in range(6))
    assert len(set(seq.token_ids)) == 7


def test_ordinal_pairs_skip_gaps(tokenizer):
    (seq,) = ordinal_sequences(tokenizer, {"gappy": (" one", " two", " eleven", " three", " four")})
    assert seq.texts == (" one", " two", " three", " four")
    assert seq.pairs == ((0, 1), (2, 3))  # two -> three is no pair: eleven stood between them


def test_strict_top_counts_ties_against_the_head():
    logits = torch.tensor([[1.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    assert strict_top(logits, torch.tensor([0, 0])).tolist() == [0.0, 1.0]


def _reference_ov_scores(model, values, tokens):
    """Slow path: one sample and head at a time, through the model's own norm modules."""
    adapter, cfg = model.adapter, model.cfg
    candidates = tokens.unique()
    group = cfg.n_heads // cfg.n_kv_heads
    final = adapter.norm(None, "ln_final")
    bias = adapter.norm_bias(final)
    copying = torch.zeros(cfg.n_layers, cfg.n_heads)
    suppression = torch.zeros(cfg.n_layers, cfg.n_heads)
    with torch.no_grad():
        for layer in range(cfg.n_layers):
            w_o = adapter.W_O(layer)
            for head in range(cfg.n_heads):
                for v, token in zip(values[layer], tokens):
                    out = v[head // group] @ w_o[head]
                    if "ln1_post" in adapter.norm_paths:
                        out = adapter.norm(layer, "ln1_post")(out[None])[0]
                    normed = final(out[None])[0]
                    normed = normed - bias if bias is not None else normed  # not the head's doing
                    logits = normed @ model.W_U[:, candidates]
                    own = logits[candidates == token]
                    copying[layer, head] += float((logits >= own).sum() == 1)
                    suppression[layer, head] += float((logits <= own).sum() == 1)
    return copying / len(tokens), suppression / len(tokens)


def test_fast_ov_scores_match_the_reference(tiny):
    seqs = repeated_tokens(tiny, n_seqs=2, seq_len=6, seed=3)
    _, cache = tiny.run_with_cache(seqs.ids, names="blocks.*.attn.hook_v", positions=seqs.first)
    values = [cache["v", layer].flatten(0, 1) for layer in range(tiny.cfg.n_layers)]
    tokens = seqs.ids[:, seqs.first].flatten()
    fast = ov_rank_scores(tiny, values, tokens)
    copying, suppression = _reference_ov_scores(tiny, values, tokens)
    torch.testing.assert_close(fast["copying"], copying, atol=0, rtol=0)
    torch.testing.assert_close(fast["copy_suppression"], suppression, atol=0, rtol=0)
