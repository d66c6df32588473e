"""Attention-head roles: score every head as previous-token, duplicate-token, induction,
copying, copy-suppression and successor head, in one call::

    roles = head_roles(model, n_seqs=8, seq_len=40, seed=0)
    roles.top("induction", 5)       # [(18, 6, 0.86), ...]: (layer, head, score)
    roles.plot().savefig("heads.png")
    roles.save("heads.json")

One forward pass over repeated random tokens gives the attention scores
(:mod:`~mechscope.heads.patterns`) and the value vectors the OV scores read
(:mod:`~mechscope.heads.ov`); one small pass over ordinal tokens gives the successor
score (:mod:`~mechscope.heads.successor`). Every score is in [0, 1], per query head
(under grouped-query attention heads that share a key/value head still differ in W_O).

An induction head, in Olsson et al.'s sense, scores high on both ``induction`` (prefix
matching) and ``copying``; a copy-suppression head (McDougall et al.) on
``copy_suppression``; ``baselines`` says what a head with no role scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.errors import InputError, closest
from mechscope.heads.ov import ov_rank_scores
from mechscope.heads.patterns import PATTERN_SCORES, pattern_scores, uniform_baseline
from mechscope.heads.plot import score_grid
from mechscope.heads.sequences import RepeatedTokens, repeated_tokens
from mechscope.heads.successor import ORDINAL_SEQUENCES, ordinal_sequences, successor_scores
from mechscope.results import Result
from mechscope.viz.heatmap import heatmap

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel

SCORES = (*PATTERN_SCORES, "copying", "copy_suppression", "successor")
"""Every score a :class:`HeadRoles` holds, in plotting order."""


@dataclass(frozen=True)
class HeadRoles(Result):
    """Role scores of every attention head (rows: layers, columns: query heads)."""

    model_name: str
    """The model scored."""
    previous_token: Float[Tensor, "layer head"]
    """Mean attention from each position to the one before it."""
    duplicate_token: Float[Tensor, "layer head"]
    """Mean attention from a token's second occurrence to its first."""
    induction: Float[Tensor, "layer head"]
    """Prefix matching: mean attention from a token's second occurrence to the token after its first."""
    copying: Float[Tensor, "layer head"]
    """Fraction of sampled tokens that the head's OV output ranks first among the candidates."""
    copy_suppression: Float[Tensor, "layer head"]
    """Fraction of sampled tokens that the head's OV output ranks last among the candidates."""
    successor: Float[Tensor, "layer head"]
    """Fraction of ordinal pairs (a, b) where the OV output of a ranks b first in a's sequence (NaN: no pairs)."""
    baselines: dict[str, float]
    """Per score, what a head without the role scores on average (uniform attention, random ranking)."""
    n_seqs: int
    """Repeated random sequences scored."""
    seq_len: int
    """Random tokens in each copy of a sequence."""
    seed: int
    """Seed of the random tokens."""
    bos: bool
    """Whether each sequence (and each ordinal item) started with the BOS token."""
    n_candidates: int
    """Distinct sampled tokens that the copying scores rank against each other."""
    successor_sequences: tuple[str, ...]
    """Ordinal sequences with single-token items in this tokenizer (see ``ORDINAL_SEQUENCES``)."""
    n_successor_pairs: int
    """Consecutive pairs the successor score averages over."""

    @property
    def scores(self) -> dict[str, Float[Tensor, "layer head"]]:
        """Every score by name, in :data:`SCORES` order."""
        return {name: getattr(self, name) for name in SCORES}

    def _score(self, score: str) -> Tensor:
        if score not in SCORES:
            hint = closest(score, SCORES, n=1)
            raise InputError(
                f"unknown score {score!r}; expected one of {', '.join(SCORES)}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
        return getattr(self, score)

    def top(self, score: str, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` highest-scoring heads as ``(layer, head, value)``, best first (NaN never)."""
        values = self._score(score).flatten().nan_to_num(float("-inf"))
        n_heads = self._score(score).shape[1]
        best = values.topk(min(k, int(torch.isfinite(values).sum())))
        return [(int(i) // n_heads, int(i) % n_heads, float(v)) for v, i in zip(best.values, best.indices)]

    def plot(self, score: str | None = None) -> Figure:
        """One heatmap (layer × head) per score, or only ``score``'s."""
        if score is None:
            return score_grid(self.scores, title=f"Head roles: {self.model_name}")
        values = self._score(score)
        return heatmap(
            values,
            row_labels=[f"L{layer}" for layer in range(values.shape[0])],
            col_labels=[f"H{head}" for head in range(values.shape[1])],
            title=f"{score.replace('_', ' ')} score: {self.model_name}",
            xlabel="head",
            ylabel="layer",
            colorbar_label=f"score (no role ≈ {self.baselines[score]:.3f})",
            centered=False,
        )


def _probe(model: HookedModel, seqs: RepeatedTokens) -> tuple[dict[str, Tensor], list[Tensor]]:
    """One pass: attention scores per layer (reduced as they are made, so no pattern is
    kept) and the value vectors at the first copy."""
    per_layer: dict[int, dict[str, Tensor]] = {}

    def reduce(pattern: Tensor, hook) -> None:
        per_layer[hook.layer] = pattern_scores(pattern, seqs)

    with model.hooks(fwd=[("blocks.*.attn.hook_pattern", reduce)]):
        _, cache = model.run_with_cache(seqs.ids, names="blocks.*.attn.hook_v", positions=seqs.first)
    layers = range(model.cfg.n_layers)
    scores = {name: torch.stack([per_layer[layer][name] for layer in layers]) for name in PATTERN_SCORES}
    values = [cache["v", layer].flatten(0, 1) for layer in layers]  # (batch pos) kv_head d_head
    return scores, values


def head_roles(
    model: HookedModel, *, n_seqs: int = 8, seq_len: int = 40, seed: int = 0, prepend_bos: bool = True
) -> HeadRoles:
    """Score every attention head's role on ``n_seqs`` repeated random sequences.

    Args:
        n_seqs: sequences ``[BOS] r r`` in the batch.
        seq_len: random tokens in ``r`` (at most half the model's context).
        seed: seed of the random tokens; the same seed gives the same scores.
        prepend_bos: start sequences with the tokenizer's BOS token when it has one
            (default); False never adds it.
    """
    seqs = repeated_tokens(model, n_seqs=n_seqs, seq_len=seq_len, seed=seed, prepend_bos=prepend_bos)
    scores, values = _probe(model, seqs)
    tokens = seqs.ids[:, seqs.first].flatten().cpu()
    scores.update(ov_rank_scores(model, values, tokens))
    ordinals = ordinal_sequences(model.tokenizer, ORDINAL_SEQUENCES)
    bos = seqs.prefix_len == 1
    scores["successor"] = successor_scores(model, ordinals, prepend_bos=bos)
    n_candidates = int(tokens.unique().numel())
    n_pairs = sum(len(seq.pairs) for seq in ordinals)
    baselines = uniform_baseline(seqs)
    baselines["copying"] = baselines["copy_suppression"] = 1.0 / n_candidates
    baselines["successor"] = (
        sum(len(seq.pairs) / len(seq.texts) for seq in ordinals) / n_pairs if n_pairs else float("nan")
    )
    return HeadRoles(
        model_name=model.name,
        **scores,
        baselines=baselines,
        n_seqs=n_seqs,
        seq_len=seq_len,
        seed=seed,
        bos=bos,
        n_candidates=n_candidates,
        successor_sequences=tuple(seq.name for seq in ordinals),
        n_successor_pairs=n_pairs,
    )
