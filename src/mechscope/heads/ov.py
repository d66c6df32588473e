"""What a head writes when it attends to a token: the OV circuit's direct effect on logits.

A head that attends fully to position ``s`` adds ``v_s @ W_O[h]`` to the residual, where
``v_s`` is the value vector its key/value head computed there (``attn.hook_v``: the
layer's own norm, ``W_V`` and ``b_V`` applied to the real residual, so deep heads are
judged on what they actually read, not on a raw embedding). Read straight through the
unembedding, that output raises some tokens' logits and lowers others'::

    logits_h(s) = v_s @ W_O[h] @ U          U = centre(w_final ⊙ W_U)   (per candidate token)

The final norm's weight (and, for LayerNorm, its centring) is applied; its scale is a
positive number per position, the same for every token, so it is left out and no
ranking changes. Gemma's post-attention norm contributes its weight the same way.
``b_O`` belongs to no head and is left out.

Scores, over samples ``(token t at position s)`` taken from the first copy of the
repeated random sequences, ranking only the distinct sampled tokens (the candidates):

* copying (Olsson et al.'s second induction axis, after Wang et al.'s copy score):
  fraction of samples where ``t`` gets the highest logit of all candidates;
* copy suppression (McDougall et al.'s OV test): fraction where ``t`` gets the lowest.

Ties count against the head, so a head that writes nothing scores 0 on both; a head
with no such role scores about ``1 / n_candidates``.

Why rank among the sampled tokens rather than the whole vocabulary: the whole vocabulary
needs ``W_O[h] @ U`` for every head, about 0.5 TFLOP for smollm2-135m (half a minute on
two cores); with ~300 candidates it is milliseconds. First of ~300 random tokens is the
top 0.3 %, more lenient than Wang et al.'s top 5 of 50k, which also fails a head that
boosts "Paris" when shown " Paris"; random candidates rarely hold such near-spellings.
Elhage et al.'s eigenvalue summary (Σλ / Σ|λ| of the same token-to-token map) was
tried and dropped: on smollm2-135m it gives layer-0 heads 0.94 (L0H0) and -0.97 (L0H2)
while their outputs rank the attended token first or last for under 1 % of samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from einops import einsum
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel

OV_SCORES = ("copying", "copy_suppression")
"""The scores :func:`ov_rank_scores` returns, in order."""


def direct_logit_map(
    model: HookedModel, layer: int, candidates: Int[Tensor, "cand"]
) -> Float[Tensor, "head d_head cand"]:
    """``W_O[h] @ U[:, candidates]`` for each head of ``layer``: z-space to direct logits."""
    adapter = model.adapter
    with torch.no_grad():
        w_o = adapter.W_O_residual(layer).float()  # through any post-attention norm's weight
        final = adapter.norm(None, "ln_final")
        unembed = adapter.norm_weight(final).float()[:, None] * model.W_U[:, candidates.to(model.device)].float()
        if adapter.normalization == "layernorm":  # LayerNorm centres its input first: centre(x)·u = x·centre(u)
            unembed = unembed - unembed.mean(0, keepdim=True)
        return (w_o @ unembed).cpu()


def per_query_head(values: Float[Tensor, "n kv_head d_head"], n_heads: int) -> Float[Tensor, "n head d_head"]:
    """Value vectors as each query head reads them: head h uses kv head h // (n_heads // n_kv_heads)."""
    return values.repeat_interleave(n_heads // values.shape[1], dim=1)


def ov_logits(
    values: Float[Tensor, "n kv_head d_head"], logit_map: Float[Tensor, "head d_head cand"]
) -> Float[Tensor, "head n cand"]:
    """Each head's direct logits on the candidates when it attends to each sample."""
    v = per_query_head(values.float().cpu(), logit_map.shape[0])
    return einsum(v, logit_map, "n head d_head, head d_head cand -> head n cand")


def strict_top(logits: Float[Tensor, "... cand"], index: Int[Tensor, "..."]) -> Float[Tensor, "..."]:
    """1 where the candidate at ``index`` is strictly above every other candidate, else 0."""
    own = logits.gather(-1, index.expand(*logits.shape[:-1]).unsqueeze(-1))
    return ((logits >= own).sum(-1) == 1).float()


def ov_rank_scores(
    model: HookedModel, values: list[Float[Tensor, "n kv_head d_head"]], tokens: Int[Tensor, "n"]
) -> dict[str, Float[Tensor, "layer head"]]:
    """Copying and copy-suppression scores of every head (see the module docstring).

    ``values[layer]`` holds the value vectors at the positions holding ``tokens``.
    """
    candidates, own = tokens.cpu().unique(return_inverse=True)
    copying, suppression = [], []
    for layer, layer_values in enumerate(values):
        logits = ov_logits(layer_values, direct_logit_map(model, layer, candidates))
        copying.append(strict_top(logits, own).mean(-1))
        suppression.append(strict_top(-logits, own).mean(-1))
    return {"copying": torch.stack(copying), "copy_suppression": torch.stack(suppression)}
