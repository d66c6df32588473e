"""The numbers behind a feature dashboard: which tokens to show, histograms, logit effects,
decoder neighbours. Plain tensors in, plain values out; :mod:`mechscope.sae.dashboard`
assembles them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

Position = tuple[int, int]
"""(row, position) of a token in the evaluated text."""


@dataclass(frozen=True)
class Activations:
    """Some latents' activations over rows of text (rows padded to one width)."""

    ids: Int[Tensor, "rows pos"]
    """Token ids."""
    real: Bool[Tensor, "rows pos"]
    """True on real tokens (False on padding)."""
    valid: Bool[Tensor, "rows pos"]
    """True on the tokens that count (real, and not BOS when BOS is skipped)."""
    values: Float[Tensor, "rows pos feature"]
    """Activations (0 where not ``valid``)."""

    def with_values(self, values: Tensor) -> Activations:
        return replace(self, values=values)


def top_positions(values: Float[Tensor, "rows pos"], n: int, spacing: int) -> list[Position]:
    """The ``n`` largest positive activations, largest first, skipping any token within
    ``spacing`` positions of one already chosen in the same row (so that examples are
    different stretches of text, not one window shifted by a token)."""
    flat = values.reshape(-1)
    n_pos = int((flat > 0).sum())
    if n_pos == 0:
        return []
    candidates = flat.topk(min(n_pos, max(50 * n, 1000))).indices.tolist()
    chosen: list[Position] = []
    width = values.shape[1]
    for index in candidates:
        row, pos = divmod(index, width)
        if all(r != row or abs(p - pos) > spacing for r, p in chosen):
            chosen.append((row, pos))
            if len(chosen) == n:
                break
    return chosen


def quantile_positions(
    values: Float[Tensor, "rows pos"], n_groups: int, per_group: int, seed: int
) -> list[tuple[float, float, int, list[Position]]]:
    """Split the positive activations into ``n_groups`` groups of equal counts (by
    quantiles) and draw up to ``per_group`` tokens of each at random; highest group first.
    Each entry: (lowest, highest, tokens in the group, chosen positions)."""
    flat = values.reshape(-1)
    firing = (flat > 0).nonzero().squeeze(-1)
    if firing.numel() == 0:
        return []
    order = firing[flat[firing].argsort()]  # firing token indices, by increasing activation
    generator = torch.Generator().manual_seed(seed)
    width = values.shape[1]
    groups = []
    for part in order.tensor_split(min(n_groups, order.numel())):
        picks = part[torch.randperm(part.numel(), generator=generator)[:per_group]]
        picks = picks[flat[picks].argsort(descending=True)]
        positions = [divmod(int(i), width) for i in picks]
        groups.append((float(flat[part[0]]), float(flat[part[-1]]), int(part.numel()), positions))
    return groups[::-1]


def histogram(values: Float[Tensor, "n"], bins: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Edges (0 to the maximum) and counts of the positive ``values``."""
    positive = values[values > 0].float()
    top = float(positive.max()) if positive.numel() else 1.0
    counts = torch.histc(positive, bins=bins, min=0.0, max=top) if positive.numel() else torch.zeros(bins)
    edges = torch.linspace(0.0, top, bins + 1)
    return tuple(float(e) for e in edges), tuple(int(c) for c in counts)


def residual_directions(model, sae, features: list[int]) -> tuple[Tensor | None, str]:
    """Decoder rows of ``features`` as residual-stream directions (features d_model), or
    None with the reason when the SAE's output space does not map linearly onto it."""
    name = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name
    point = model.hook_point(name)
    rows = sae.W_dec[features].detach().float()
    kind, layer = point.kind, point.layer
    residual = ("hook_embed", "hook_pos_embed", "hook_resid_pre", "hook_resid_mid", "hook_resid_post",
                "hook_attn_out", "hook_mlp_out", "ln_final.hook_normalized")
    if kind in residual:
        return rows, "decoder direction"
    if model.cfg.post_norms and kind in ("mlp.hook_post", "attn.hook_z"):
        return None, f"{kind} reaches the residual stream through a post-norm here, which is not linear"
    if kind == "mlp.hook_post":
        return rows @ model.W_out[layer].detach().float(), "decoder direction through W_out"
    if kind == "attn.hook_z":
        per_head = rows.reshape(len(features), model.cfg.n_heads, model.cfg.d_head)
        return torch.einsum("fhd,hdm->fm", per_head, model.W_O[layer].detach().float()), \
            "decoder direction through W_O"
    return None, f"{kind} does not map linearly onto the residual stream"


def logit_effects(model, sae, features: list[int]) -> tuple[Tensor | None, str]:
    """Per feature, the change of every logit per unit activation (features d_vocab): the
    residual direction through the final norm's weight (centred first under a layer
    norm, which subtracts the mean) and the unembedding; None with a reason if unavailable."""
    directions, how = residual_directions(model, sae, features)
    if directions is None:
        return None, f"no promoted/suppressed tokens: {how}"
    name = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name
    effects, through = unembed_directions(model, directions, name)
    return effects, f"{how}{through}"


def unembed_directions(model, directions: Float[Tensor, "n d_model"], hook_name: str) -> tuple[Tensor, str]:
    """Residual-stream ``directions`` written at ``hook_name`` as logit changes (n d_vocab),
    through the final norm's weight (ignoring its scale) and ``W_U``; with how."""
    how = ""
    if hook_name != "ln_final.hook_normalized":
        if model.cfg.normalization == "layernorm":
            directions = directions - directions.mean(-1, keepdim=True)
        norm = model.adapter.norm(None, "ln_final")
        directions = directions * model.adapter.norm_weight(norm).detach().float()
        how = ", final norm's weight"
    effects = directions.float() @ model.W_U.detach().float()
    return effects.cpu(), f"{how} and W_U (logit change per unit activation, ignoring the norm's scale)"


def nearest_features(sae, features: list[int], n: int) -> list[list[tuple[int, float]]]:
    """Per feature, the ``n`` other latents with the most cosine-similar decoder rows."""
    decoder = sae.W_dec.detach().float()
    unit = decoder / decoder.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    sims = unit[features] @ unit.T
    sims[torch.arange(len(features)), torch.tensor(features)] = -float("inf")
    n = min(n, sae.cfg.d_sae - 1)
    if n <= 0:
        return [[] for _ in features]
    top = sims.topk(n, dim=-1)
    return [[(int(i), float(v)) for i, v in zip(idx, val)] for idx, val in zip(top.indices.cpu(), top.values.cpu())]
