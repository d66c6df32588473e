"""Mover heads: at the answer position, attend to an earlier copy of the answer and write it out.

Wang et al.'s name movers in IOI attend from the last token to the indirect object's
name and copy it to the logits. For any task whose answer token appears earlier in the
prompt, a head moves it when both hold::

    attention   a_h = pattern[answer_pos, s]           s: the answer token's last earlier position
    copying     c_h = 1 if v_s @ W_O[h] @ U ranks the answer first among the candidates

``attention`` is the mean over those prompts; ``copying`` the fraction of them where the
head's OV output, read from the answer's position, gives the answer the highest direct
logit among the candidates (every distinct token of the task's prompts, as
:mod:`~mechscope.heads.ov` ranks). ``mover`` = attention × copying: high only for a head
that both looks at the answer and promotes it. A head that attends to the answer but
writes it *down* is a copy-suppression candidate (``suppressing``, the fraction where
the answer ranks last). Tasks whose answers never occur earlier (greater-than, factual
recall) have no movers to find: ``n_prompts`` is 0 and every score NaN.

    scores = mover_scores(model, task)
    scores.top(3)                    # [(layer, head, mover score), ...]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.heads.ov import direct_logit_map, ov_logits, strict_top
from mechscope.results import Result
from mechscope.tasks.task import Task


@dataclass(frozen=True)
class MoverScores(Result):
    """How much each head moves the answer token from an earlier position to the logits."""

    task: str
    """The task scored."""
    attention: Float[Tensor, "layer head"]
    """Mean attention from the answer position to the answer token's last earlier position."""
    copying: Float[Tensor, "layer head"]
    """Fraction of prompts where the head's OV output from there ranks the answer first."""
    suppressing: Float[Tensor, "layer head"]
    """Fraction of prompts where it ranks the answer last (copy suppression)."""
    n_prompts: int
    """Prompts whose answer token occurs before the answer position (the others are skipped)."""
    n_candidates: int
    """Distinct tokens the OV output is ranked among."""

    @property
    def mover(self) -> Float[Tensor, "layer head"]:
        """attention × copying: both look at the answer and promote it."""
        return self.attention * self.copying

    def top(self, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the highest mover score, as (layer, head, score)."""
        values = self.mover.flatten().nan_to_num(float("-inf"))
        n_heads = self.mover.shape[1]
        best = values.topk(min(k, int(torch.isfinite(values).sum())))
        return [(int(i) // n_heads, int(i) % n_heads, float(v)) for v, i in zip(best.values, best.indices)]


def mover_scores(model, task: Task) -> MoverScores:
    """Score every head of ``model`` as a mover on ``task``'s clean prompts."""
    cfg = model.cfg
    ids, answers, answer_pos = task.clean.ids, task.answers, task.answer_pos
    rows, sources = [], []
    for row in range(len(task)):
        before = (ids[row, : int(answer_pos[row])] == answers[row]).nonzero()
        if len(before):
            rows.append(row)
            sources.append(int(before[-1]))
    shape = (cfg.n_layers, cfg.n_heads)
    if not rows:
        nan = torch.full(shape, float("nan"))
        return MoverScores(task=task.name, attention=nan, copying=nan, suppressing=nan, n_prompts=0, n_candidates=0)
    rows_t, sources_t = torch.tensor(rows), torch.tensor(sources)
    candidates, own = ids.unique(return_inverse=True)
    own_answer = torch.searchsorted(candidates, answers[rows_t])
    targets = answer_pos[rows_t]
    with torch.no_grad():
        _, cache = model.run_with_cache(task.clean, names=["blocks.*.attn.hook_pattern", "blocks.*.attn.hook_v"])
    attention, copying, suppressing = [], [], []
    for layer in range(cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"].float().cpu()  # batch head q k
        attention.append(pattern[rows_t, :, targets, sources_t].mean(0))
        values = cache[f"blocks.{layer}.attn.hook_v"].float().cpu()[rows_t, sources_t]  # n kv_head d_head
        logits = ov_logits(values, direct_logit_map(model, layer, candidates))  # head n cand
        copying.append(strict_top(logits, own_answer).mean(-1))
        suppressing.append(strict_top(-logits, own_answer).mean(-1))
    return MoverScores(task=task.name, attention=torch.stack(attention), copying=torch.stack(copying),
                       suppressing=torch.stack(suppressing), n_prompts=len(rows), n_candidates=len(candidates))
