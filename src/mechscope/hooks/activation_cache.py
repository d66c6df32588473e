"""ActivationCache: the activations (and gradients) one run kept, and the residual algebra.

The residual stream is a sum. Everything the blocks write to it adds up to the final
residual, which the final norm scales and the unembedding reads::

    resid_final = embed (+ pos_embed) + Σ_layers (attn_out + mlp_out)
    attn_out    = Σ_heads z[h] @ W_O[h] + b_O            (Gemma: then × (1+w)/scale_post)
    logits      = W_U · norm(resid_final)

so with the final norm's scale frozen (cached as ``ln_final.hook_scale``) each part's
direct effect on a logit is linear, and the parts sum to the whole::

    logits, cache = model.run_with_cache(prompt)
    parts = cache.decompose_resid(split_heads=True, pos=-1)        # embed, L0H0 … mlp_out
    attrs = cache.logit_attrs(parts.components, tokens=paris_id, pos=-1)
    # attrs.sum(0) + W_U[:, paris_id] · norm_bias == logits[:, -1, paris_id] - b_U

Positions: ``pos=None`` keeps every kept position, an int or a slice selects, and a
tensor of one index per prompt (e.g. ``cache.batch.last_positions()``) picks one
position per prompt and drops the position axis.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from einops import einsum
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import HookPointError, InputError
from mechscope.hooks.points import hook_name
from mechscope.hooks.tokens import TokenBatch

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel

PosSelector = int | slice | Int[Tensor, "batch"] | None


@dataclass(frozen=True)
class ResidualStack:
    """Named pieces of the residual stream, stacked along a leading component axis."""

    components: Float[Tensor, "component batch *pos d_model"]
    """One slice per component; summing over axis 0 gives the residual they make up."""
    labels: tuple[str, ...]
    """A readable name per component: ``embed``, ``3_attn_out``, ``L3H5``, ``final_post`` …"""

    def __len__(self) -> int:
        return len(self.labels)


def select_positions(tensor: Tensor, positions, dim: int) -> Tensor:
    """Keep only ``positions`` along ``dim`` (None keeps all) as a fresh tensor."""
    if positions is None:
        return tensor
    if isinstance(positions, int):
        return tensor.select(dim, positions).unsqueeze(dim).clone()
    if isinstance(positions, slice):
        index = torch.arange(tensor.shape[dim], device=tensor.device)[positions]
    else:
        index = torch.as_tensor(positions, device=tensor.device).long()
    return tensor.index_select(dim, index)


class ActivationCache(Mapping[str, Tensor]):
    """Activations kept by :meth:`HookedModel.run_with_cache`, by hook name.

    ``cache["blocks.3.hook_resid_post"]`` or, as in TransformerLens,
    ``cache["resid_post", 3]`` and ``cache["scale", 3, "ln1"]``.
    """

    def __init__(
        self,
        model: HookedModel,
        acts: dict[str, Tensor],
        grads: dict[str, Tensor],
        batch: TokenBatch,
        positions,
    ) -> None:
        self.model = model
        self.grads: dict[str, Tensor] = grads
        """Gradient of the run's ``grad_metric`` at each kept point (empty without one)."""
        self.batch = batch
        """The tokens and attention mask the run used."""
        self.positions = positions
        """The ``positions`` the run kept (None: all); ``pos`` selectors index these."""
        self._acts = acts

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, key: str | tuple) -> Tensor:
        name = hook_name(*key) if isinstance(key, tuple) else key
        if name not in self._acts:
            raise HookPointError(
                f"{name!r} was not kept in this cache; run run_with_cache with names including it "
                f"(kept: {_summarize(self._acts)})"
            )
        return self._acts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._acts)

    def __len__(self) -> int:
        return len(self._acts)

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} points: {_summarize(self._acts)})"

    def _pos(self, name: str | tuple, pos: PosSelector) -> Tensor:
        """A kept activation with ``pos`` applied to its position axis."""
        tensor = self[name]
        full = name if isinstance(name, str) else hook_name(*name)
        return apply_pos(tensor, pos, self.model.hook_point(full).pos_dim)

    # --------------------------------------------------------- residual stacks
    def accumulated_resid(self, layer: int | None = None, *, incl_mid: bool = False, pos: PosSelector = None) -> ResidualStack:
        """The residual stream before each block (and after the last): a logit-lens stack.

        ``layer`` stops before block ``layer`` (None: every block plus the final residual).
        """
        n_layers = self.model.cfg.n_layers
        last = n_layers if layer is None else layer
        parts, labels = [], []
        for i in range(last):
            parts.append(self._pos(("resid_pre", i), pos))
            labels.append(f"{i}_pre")
            if incl_mid:
                parts.append(self._pos(("resid_mid", i), pos))
                labels.append(f"{i}_mid")
        if layer is None:
            parts.append(self._pos(("resid_post", n_layers - 1), pos))
            labels.append("final_post")
        else:
            parts.append(self._pos(("resid_pre", layer), pos))
            labels.append(f"{layer}_pre")
        return ResidualStack(torch.stack(parts), tuple(labels))

    def decompose_resid(self, layer: int | None = None, *, split_heads: bool = False, pos: PosSelector = None) -> ResidualStack:
        """What each embedding, attention and MLP wrote to the residual before block ``layer``.

        The components sum to ``resid_pre`` of ``layer`` (None: the final residual). With
        ``split_heads`` each attention output is split into its heads (needs ``attn.hook_z``)
        plus, where the output projection has a bias, an ``L{l}_attn_bias`` component.
        """
        last = self.model.cfg.n_layers if layer is None else layer
        parts, labels = [self._pos("hook_embed", pos)], ["embed"]
        if "hook_pos_embed" in self.model.hook_names():
            parts.append(self._pos("hook_pos_embed", pos))
            labels.append("pos_embed")
        for i in range(last):
            if split_heads:
                heads = self._layer_heads(i, pos)
                parts.extend(heads)
                labels.extend(f"L{i}H{h}" for h in range(len(heads)))
                bias = self._attn_bias(i, pos)
                if bias is not None:
                    parts.append(bias)
                    labels.append(f"L{i}_attn_bias")
            else:
                parts.append(self._pos(("attn_out", i), pos))
                labels.append(f"{i}_attn_out")
            parts.append(self._pos(("mlp_out", i), pos))
            labels.append(f"{i}_mlp_out")
        return ResidualStack(torch.stack(parts), tuple(labels))

    def stack_head_results(self, layer: int | None = None, *, pos: PosSelector = None) -> ResidualStack:
        """Each head's output ``z[h] @ W_O[h]`` in the blocks before ``layer`` (None: all).

        Computed from the kept ``attn.hook_z``; the output projection's bias is not part of
        any head. Under Gemma's post-attention norm each head is scaled by the kept
        ``ln1_post.hook_scale`` and the norm's weight, so heads still sum to ``hook_attn_out``.
        """
        last = self.model.cfg.n_layers if layer is None else layer
        if not 1 <= last <= self.model.cfg.n_layers:
            raise InputError(f"no heads before layer {layer}; pass a layer in 1..{self.model.cfg.n_layers} or None")
        parts = [self._layer_heads(i, pos) for i in range(last)]
        labels = tuple(f"L{i}H{h}" for i in range(last) for h in range(self.model.cfg.n_heads))
        return ResidualStack(torch.cat(parts), labels)

    def _layer_heads(self, layer: int, pos: PosSelector) -> Float[Tensor, "head batch *pos d_model"]:
        z = self._pos(("z", layer), pos)
        w_o = self.model.adapter.W_O(layer).to(z)
        result = einsum(z, w_o, "batch ... head d_head, head d_head d_model -> head batch ... d_model")
        return self._post_norm(layer, result, pos)

    def _attn_bias(self, layer: int, pos: PosSelector) -> Tensor | None:
        bias = self.model.adapter.b_O(layer)
        if bias is None:
            return None
        z = self._pos(("z", layer), pos)  # batch *pos head d_head
        expanded = bias.to(z).expand(*z.shape[:-2], bias.shape[-1])
        return self._post_norm(layer, expanded.unsqueeze(0), pos)[0]

    def _post_norm(self, layer: int, parts: Tensor, pos: PosSelector) -> Tensor:
        """Per-head parts as they enter the residual (the adapter knows how; Gemma needs
        its post-attention norm's kept scale)."""
        adapter = self.model.adapter
        point = adapter.head_scale_point
        scale = None if point is None else self._pos(f"blocks.{layer}.{point}", pos).to(parts)
        return adapter.heads_to_residual(layer, parts, scale)

    # ------------------------------------------------------------- final norm
    def apply_ln_to_stack(
        self, stack: Float[Tensor, "... batch *pos d_model"], layer: int | None = None, *, pos: PosSelector = None
    ) -> Float[Tensor, "... batch *pos d_model"]:
        """Map each residual component through a norm with the run's scale frozen.

        Each component c becomes ``w * (c - mean(c)) / scale`` (LayerNorm) or
        ``w * c / scale`` (RMSNorm), with the scale kept in the cache: the final norm's
        (``ln_final.hook_scale``) or, given ``layer``, that block's ``ln1``. The results
        sum to the norm's output minus its bias. Pass the same ``pos`` the stack was
        built with.
        """
        adapter = self.model.adapter
        if layer is None:
            norm, scale = adapter.norm(None, "ln_final"), self._pos("ln_final.hook_scale", pos)
        else:
            norm, scale = adapter.norm(layer, "ln1"), self._pos(("scale", layer, "ln1"), pos)
        if scale.shape[:-1] != stack.shape[-scale.dim():-1]:
            raise InputError(
                f"stack of shape {tuple(stack.shape)} does not line up with the kept norm scale "
                f"{tuple(scale.shape)} (batch pos 1); build the stack with the same pos= as here"
            )
        if adapter.normalization == "layernorm":
            stack = stack - stack.mean(-1, keepdim=True)
        return stack / scale.to(stack) * adapter.norm_weight(norm).to(stack)

    def logit_attrs(
        self,
        stack: Float[Tensor, "component batch *pos d_model"],
        tokens: int | Int[Tensor, "batch"],
        incorrect_tokens: int | Int[Tensor, "batch"] | None = None,
        *,
        pos: PosSelector = None,
    ) -> Float[Tensor, "component batch *pos"]:
        """Each component's direct effect on the logit of ``tokens`` (minus ``incorrect_tokens``).

        Applies the final norm with its kept scale, then the unembedding. ``pos`` must be
        the selector the stack was built with.
        """
        ln_stack = self.apply_ln_to_stack(stack, pos=pos)
        direction = self._unembed_direction(tokens, stack.shape[1])
        if incorrect_tokens is not None:
            direction = direction - self._unembed_direction(incorrect_tokens, stack.shape[1])
        direction = direction.to(ln_stack).view(1, stack.shape[1], *([1] * (ln_stack.dim() - 3)), -1)
        return (ln_stack * direction).sum(-1)

    def _unembed_direction(self, tokens, n_batch: int) -> Float[Tensor, "batch d_model"]:
        w_u = self.model.W_U
        ids = torch.as_tensor(tokens, device=w_u.device).long().reshape(-1)
        if ids.numel() == 1:
            ids = ids.expand(n_batch)
        if ids.numel() != n_batch:
            raise InputError(f"expected one token or one per prompt ({n_batch}); received {ids.numel()}")
        return w_u[:, ids].T


def apply_pos(tensor: Tensor, pos: PosSelector, dim: int) -> Tensor:
    """Apply a position selector: int and slice index the axis; a per-prompt index tensor
    picks one position per batch row and drops the axis."""
    if pos is None:
        return tensor
    if isinstance(pos, (int, slice)):
        index = [slice(None)] * tensor.dim()
        index[dim] = pos
        return tensor[tuple(index)]
    pos = torch.as_tensor(pos, device=tensor.device).long()
    if pos.dim() != 1 or pos.shape[0] != tensor.shape[0]:
        raise InputError(f"a position tensor needs one index per prompt ({tensor.shape[0]}); received {tuple(pos.shape)}")
    moved = tensor.movedim(dim, 1)
    picked = moved[torch.arange(tensor.shape[0], device=tensor.device), pos]
    return picked


def _summarize(names: Sequence[str] | Mapping) -> str:
    names = list(names)
    if len(names) <= 4:
        return ", ".join(names) or "nothing"
    return f"{', '.join(names[:3])}, … ({len(names)} in all)"
