"""GPT-2: LayerNorm, learned positions, fused ``c_attn`` and ``Conv1D`` layers.

``Conv1D`` stores its weight as (in, out), the transpose of ``nn.Linear``; ``c_attn``
holds Q, K and V side by side along its output. Blocks are pre-norm::

    x = wte(tokens) + wpe(positions)
    x = x + c_proj(attn(ln_1(x)));   x = x + mlp(ln_2(x))
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from mechscope.hooks.adapters.base import FusedQKVAdapter


class GPT2Adapter(FusedQKVAdapter):
    family = "gpt2"
    model_types = ("gpt2",)
    normalization = "layernorm"
    positional = "learned"

    embed_path = "transformer.wte"
    pos_embed_path = "transformer.wpe"
    layers_path = "transformer.h"
    final_norm_path = "transformer.ln_f"
    unembed_path = "lm_head"

    attn_path = "attn"
    out_proj_path = "attn.c_proj"
    mlp_path = "mlp"
    mlp_in_path = "mlp.c_fc"
    mlp_out_proj_path = "mlp.c_proj"
    norm_paths = {"ln1": "ln_1", "ln2": "ln_2"}

    @property
    def d_mlp(self) -> int:
        return self.config.n_inner or 4 * self.config.hidden_size

    @property
    def act_fn(self) -> str:
        return self.config.activation_function

    def _qkv(self, layer: int, which: int) -> Float[Tensor, "head d_model d_head"]:
        d_model, n_heads = self.config.hidden_size, self.config.num_attention_heads
        weight = self.in_block(layer, "attn.c_attn").weight  # d_model (3 head d_head)
        part = weight[:, which * d_model : (which + 1) * d_model]
        return part.reshape(d_model, n_heads, -1).permute(1, 0, 2)

    def _qkv_bias(self, layer: int, which: int) -> Float[Tensor, "head d_head"]:
        d_model = self.config.hidden_size
        bias = self.in_block(layer, "attn.c_attn").bias
        return bias[which * d_model : (which + 1) * d_model].view(self.config.num_attention_heads, -1)

    def W_O(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        weight = self.in_block(layer, self.out_proj_path).weight  # (head d_head) d_model
        return weight.view(self.config.num_attention_heads, -1, weight.shape[-1])

    def W_in(self, layer: int) -> Float[Tensor, "d_model d_mlp"]:
        return self.in_block(layer, self.mlp_in_path).weight

    def W_out(self, layer: int) -> Float[Tensor, "d_mlp d_model"]:
        return self.in_block(layer, self.mlp_out_proj_path).weight
