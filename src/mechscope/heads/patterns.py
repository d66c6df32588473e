"""Attention-pattern scores on repeated random tokens: where does each head look?

On ``[BOS] r r`` (see :mod:`mechscope.heads.sequences`) three kinds of head have an
exact target. With ``p`` the first position of the first copy and ``T`` its length::

    previous_token   query q          → key q-1          q in p+1 .. end
    duplicate_token  query p+T+i      → key p+i          (the same token, earlier)
    induction        query p+T+i      → key p+i+1        (the token that followed it)

Each score is the attention on the target averaged over those queries and the batch:
1 for a head that puts all of its attention there, about ``1/(q+1)`` for one that
spreads it evenly. The induction score is Olsson et al.'s *prefix matching*; whether the
head then copies what it attends to is :mod:`mechscope.heads.ov`'s business.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.heads.sequences import RepeatedTokens

PATTERN_SCORES = ("previous_token", "duplicate_token", "induction")
"""The scores :func:`pattern_scores` returns, in order."""


def _targets(seqs: RepeatedTokens) -> dict[str, tuple[Tensor, Tensor]]:
    """(query positions, key positions) of each score's target."""
    p, n = seqs.prefix_len, seqs.seq_len
    i = torch.arange(n)
    query = torch.arange(p + 1, p + 2 * n)
    return {
        "previous_token": (query, query - 1),
        "duplicate_token": (p + n + i, p + i),
        "induction": (p + n + i, p + i + 1),
    }


def pattern_scores(
    pattern: Float[Tensor, "batch head query_pos key_pos"], seqs: RepeatedTokens
) -> dict[str, Float[Tensor, "head"]]:
    """Each head's mean attention on the previous-token, duplicate and induction targets."""
    scores = {}
    for name, (query, key) in _targets(seqs).items():
        query, key = query.to(pattern.device), key.to(pattern.device)
        scores[name] = pattern[:, :, query, key].float().mean(dim=(0, 2)).cpu()
    return scores


def uniform_baseline(seqs: RepeatedTokens) -> dict[str, float]:
    """What a head that spreads attention evenly over every earlier position scores."""
    return {name: float((1.0 / (query + 1)).mean()) for name, (query, _) in _targets(seqs).items()}
