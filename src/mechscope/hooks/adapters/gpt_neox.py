"""GPT-NeoX (Pythia): LayerNorm, partial rotary positions, and usually parallel attention.

With ``use_parallel_residual`` (every Pythia model) attention and MLP both read the
block's input, so there is no ``hook_resid_mid``::

    x = x + dense(attn(input_layernorm(x))) + mlp(post_attention_layernorm(x))

``query_key_value`` interleaves Q, K and V per head: its output is viewed as
(head, 3 * d_head) and split along the last axis.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from mechscope.hooks.adapters.base import FusedQKVAdapter


class GPTNeoXAdapter(FusedQKVAdapter):
    family = "gpt_neox"
    model_types = ("gpt_neox",)
    normalization = "layernorm"

    embed_path = "gpt_neox.embed_in"
    layers_path = "gpt_neox.layers"
    final_norm_path = "gpt_neox.final_layer_norm"
    unembed_path = "lm_head"

    attn_path = "attention"
    out_proj_path = "attention.dense"
    mlp_path = "mlp"
    mlp_in_path = "mlp.dense_h_to_4h"
    mlp_out_proj_path = "mlp.dense_4h_to_h"
    norm_paths = {"ln1": "input_layernorm", "ln2": "post_attention_layernorm"}

    @property
    def parallel_attn(self) -> bool:
        return bool(self.config.use_parallel_residual)

    def _qkv(self, layer: int, which: int) -> Float[Tensor, "head d_model d_head"]:
        weight = self.in_block(layer, "attention.query_key_value").weight  # (head 3 d_head) d_model
        per_head = weight.view(self.config.num_attention_heads, 3, self.d_head, weight.shape[-1])
        return per_head[:, which].transpose(1, 2)

    def _qkv_bias(self, layer: int, which: int) -> Float[Tensor, "head d_head"] | None:
        bias = self.in_block(layer, "attention.query_key_value").bias
        return None if bias is None else bias.view(self.config.num_attention_heads, 3, self.d_head)[:, which]

    def W_O(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        weight = self.in_block(layer, self.out_proj_path).weight  # d_model (head d_head)
        return weight.T.reshape(self.config.num_attention_heads, self.d_head, -1)

    def W_in(self, layer: int) -> Float[Tensor, "d_model d_mlp"]:
        return self.in_block(layer, self.mlp_in_path).weight.T

    def W_out(self, layer: int) -> Float[Tensor, "d_mlp d_model"]:
        return self.in_block(layer, self.mlp_out_proj_path).weight.T
