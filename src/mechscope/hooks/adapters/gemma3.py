"""Gemma 3 (text): the Llama layout plus extra norms, sliding windows and scaled embeddings.

Each branch is normalised both before and after, and only then added to the residual::

    x = x + post_attention_layernorm(o_proj(attn(input_layernorm(x))))
    x = x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))

so ``hook_attn_out``/``hook_mlp_out`` are the outputs of the post norms (what the
residual receives, as in TransformerLens' Gemma 2), and their scales are the extra
points ``ln1_post.hook_scale``/``ln2_post.hook_scale``. RMSNorm multiplies by
``1 + weight``. Queries and keys pass through per-head RMSNorms (``q_norm``, ``k_norm``)
that ``W_Q``/``W_K`` do not include. Five of every six layers attend within a sliding
window; the attention mask carries the window, so patterns show it.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor, nn

from mechscope.hooks.adapters.llama import LlamaAdapter


class Gemma3Adapter(LlamaAdapter):
    family = "gemma3"
    model_types = ("gemma3_text",)
    norm_paths = {
        "ln1": "input_layernorm",
        "ln1_post": "post_attention_layernorm",
        "ln2": "pre_feedforward_layernorm",
        "ln2_post": "post_feedforward_layernorm",
    }

    head_scale_point = "ln1_post.hook_scale"

    def norm_weight(self, norm: nn.Module) -> Float[Tensor, "d_model"]:
        return 1.0 + norm.weight

    def heads_to_residual(self, layer: int, parts: Tensor, scale: Tensor | None = None) -> Tensor:
        """The post-attention RMSNorm is linear at a fixed scale: each head's share of the
        norm's output is its part divided by the run's scale, times ``1 + weight``."""
        if scale is None:
            raise ValueError("Gemma's heads reach the residual through the post-attention norm: pass its scale "
                             "(ln1_post.hook_scale, or attn_output_scale of the attention output)")
        weight = self.norm_weight(self.norm(layer, "ln1_post"))
        return (parts.float() / scale.float() * weight.float()).to(parts.dtype)

    def attn_output_scale(self, layer: int, attn_out: Tensor) -> Tensor:
        norm = self.norm(layer, "ln1_post")
        return (attn_out.float().pow(2).mean(-1, keepdim=True) + self.norm_eps(norm)).sqrt()

    def W_O_residual(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        return self.W_O(layer) * self.norm_weight(self.norm(layer, "ln1_post"))

    @property
    def W_E(self) -> Float[Tensor, "d_vocab d_model"]:
        embed = self.module(self.embed_path)
        return embed.weight * embed.embed_scale.to(embed.weight.dtype)
