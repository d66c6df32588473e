"""Attention scores: exact patterns forced into chosen heads must score 1 there and only there."""

from __future__ import annotations

import pytest
import torch
from tiny import ARCHS

from mechscope.heads import head_roles, pattern_scores, repeated_tokens, uniform_baseline
from mechscope.heads.sequences import RepeatedTokens

N_SEQS, SEQ_LEN = 3, 12
PREV, DUP, IND = (0, 1), (1, 0), (1, 2)  # (layer, head) that get a forced pattern


def exact_pattern(kind: str, seqs: RepeatedTokens, n_pos: int) -> torch.Tensor:
    """A query_pos × key_pos pattern that does only ``kind``; other rows look at position 0."""
    pattern = torch.zeros(n_pos, n_pos)
    pattern[:, 0] = 1.0
    p, n = seqs.prefix_len, seqs.seq_len
    for q in range(n_pos):
        if kind == "previous_token" and q >= 1:
            key = q - 1
        elif kind in ("duplicate_token", "induction") and q >= p + n:
            key = q - n + (kind == "induction")
        else:
            continue
        pattern[q] = 0.0
        pattern[q, key] = 1.0
    return pattern


def _force(seqs: RepeatedTokens):
    n_pos = seqs.ids.shape[1]
    forced = {PREV: "previous_token", DUP: "duplicate_token", IND: "induction"}

    def hook(pattern, hook_point):
        if pattern.shape[-1] != n_pos:  # the successor pass (item after BOS) is not ours to force
            return None
        for (layer, head), kind in forced.items():
            if layer == hook_point.layer:
                pattern[:, head] = exact_pattern(kind, seqs, n_pos).to(pattern)
        return pattern

    return hook


def _reference_scores(pattern: torch.Tensor, seqs: RepeatedTokens) -> dict[str, torch.Tensor]:
    """Loops over sequences and positions, straight from the definitions."""
    p, n = seqs.prefix_len, seqs.seq_len
    batch, n_heads, n_pos, _ = pattern.shape
    sums = {name: torch.zeros(n_heads) for name in ("previous_token", "duplicate_token", "induction")}
    counts = dict.fromkeys(sums, 0)
    for b in range(batch):
        for q in range(p + 1, n_pos):
            sums["previous_token"] += pattern[b, :, q, q - 1]
            counts["previous_token"] += 1
        for i in range(n):
            # the earlier occurrence of the token at p+n+i, found by search, not by arithmetic
            first = next(k for k in range(p, p + n) if seqs.ids[b, k] == seqs.ids[b, p + n + i])
            sums["duplicate_token"] += pattern[b, :, p + n + i, first]
            sums["induction"] += pattern[b, :, p + n + i, first + 1]
            counts["duplicate_token"] += 1
            counts["induction"] += 1
    return {name: sums[name] / counts[name] for name in sums}


@pytest.mark.parametrize("bos", [True, False])
def test_vectorised_scores_match_the_reference(bos, tiny):
    seqs = repeated_tokens(tiny, n_seqs=2, seq_len=7, seed=5, prepend_bos=bos)
    pattern = torch.rand(2, 3, seqs.ids.shape[1], seqs.ids.shape[1], generator=torch.Generator().manual_seed(0))
    fast, slow = pattern_scores(pattern, seqs), _reference_scores(pattern, seqs)
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name])


def test_uniform_attention_scores_the_baseline(tiny):
    seqs = repeated_tokens(tiny, n_seqs=2, seq_len=9)
    n_pos = seqs.ids.shape[1]
    uniform = torch.ones(n_pos, n_pos).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(2, 1, n_pos, n_pos)
    scores, baseline = pattern_scores(uniform, seqs), uniform_baseline(seqs)
    for name, value in scores.items():
        assert abs(float(value[0]) - baseline[name]) < 1e-6


@pytest.mark.parametrize("arch", ARCHS)
def test_forced_heads_score_one_and_others_do_not(arch, tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model(arch), tokenizer, name=arch)
    seqs = repeated_tokens(model, n_seqs=N_SEQS, seq_len=SEQ_LEN, seed=0)
    with model.hooks(fwd=[("blocks.*.attn.hook_pattern", _force(seqs))]):
        roles = head_roles(model, n_seqs=N_SEQS, seq_len=SEQ_LEN, seed=0)
    for (layer, head), name in ((PREV, "previous_token"), (DUP, "duplicate_token"), (IND, "induction")):
        scores = roles.scores[name]
        assert abs(float(scores[layer, head]) - 1.0) < 1e-6, name
        others = scores.clone()
        others[layer, head] = 0.0
        assert others.max() < 0.4, (name, others)  # seen: at most 0.31 (Gemma windows of 4)
        assert roles.top(name, 1)[0][:2] == (layer, head)
    # The forced induction head looks one past the duplicate: it is no duplicate-token head.
    assert roles.duplicate_token[IND] < 1e-6 and roles.induction[DUP] < 1e-6
