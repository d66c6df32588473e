"""Attention-head roles: previous-token, duplicate-token, induction (prefix matching and
copying), copy-suppression and successor heads.

    from mechscope.heads import head_roles
    roles = head_roles(model)                 # repeated random tokens, seeded
    roles.top("induction", 5)                 # [(layer, head, score), ...]
    roles.plot().savefig("heads.png")         # one layer × head heatmap per score

The pieces are usable alone: :func:`repeated_tokens` (the probe), :func:`pattern_scores`
(on any attention pattern), :func:`direct_logit_map` (a head's z to its direct logits),
:func:`ov_rank_scores` and :func:`successor_scores`.
"""

from mechscope.heads.ov import OV_SCORES, direct_logit_map, ov_rank_scores
from mechscope.heads.patterns import PATTERN_SCORES, pattern_scores, uniform_baseline
from mechscope.heads.roles import SCORES, HeadRoles, head_roles
from mechscope.heads.sequences import RepeatedTokens, repeated_tokens
from mechscope.heads.successor import ORDINAL_SEQUENCES, OrdinalSequence, ordinal_sequences, successor_scores

__all__ = [
    "ORDINAL_SEQUENCES",
    "OV_SCORES",
    "PATTERN_SCORES",
    "SCORES",
    "HeadRoles",
    "OrdinalSequence",
    "RepeatedTokens",
    "direct_logit_map",
    "head_roles",
    "ordinal_sequences",
    "ov_rank_scores",
    "pattern_scores",
    "repeated_tokens",
    "successor_scores",
    "uniform_baseline",
]
