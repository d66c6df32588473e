"""The Llama family: Llama, SmolLM2, Qwen2, Mistral.

Pre-norm blocks with RMSNorm, rotary positions, grouped-query attention (``k_proj`` and
``v_proj`` have ``num_key_value_heads`` heads, each shared by
``num_attention_heads // num_key_value_heads`` query heads) and a gated SiLU MLP::

    x = x + o_proj(attn(input_layernorm(x)))
    x = x + down_proj(act(gate_proj(h)) * up_proj(h)),  h = post_attention_layernorm(x)
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from mechscope.hooks.adapters.base import Adapter, linear_heads, linear_heads_bias, linear_heads_in


class LlamaAdapter(Adapter):
    family = "llama"
    model_types = ("llama", "qwen2", "mistral")
    normalization = "rmsnorm"

    embed_path = "model.embed_tokens"
    layers_path = "model.layers"
    final_norm_path = "model.norm"
    unembed_path = "lm_head"

    attn_path = "self_attn"
    out_proj_path = "self_attn.o_proj"
    mlp_path = "mlp"
    mlp_in_path = "mlp.gate_proj"
    mlp_in_linear_path = "mlp.up_proj"
    mlp_out_proj_path = "mlp.down_proj"
    norm_paths = {"ln1": "input_layernorm", "ln2": "post_attention_layernorm"}

    def W_Q(self, layer: int) -> Float[Tensor, "head d_model d_head"]:
        return linear_heads(self.in_block(layer, "self_attn.q_proj"), self.config.num_attention_heads)

    def W_K(self, layer: int) -> Float[Tensor, "kv_head d_model d_head"]:
        return linear_heads(self.in_block(layer, "self_attn.k_proj"), self.n_kv_heads)

    def W_V(self, layer: int) -> Float[Tensor, "kv_head d_model d_head"]:
        return linear_heads(self.in_block(layer, "self_attn.v_proj"), self.n_kv_heads)

    def b_Q(self, layer: int) -> Float[Tensor, "head d_head"] | None:
        return linear_heads_bias(self.in_block(layer, "self_attn.q_proj"), self.config.num_attention_heads)

    def b_K(self, layer: int) -> Float[Tensor, "kv_head d_head"] | None:
        return linear_heads_bias(self.in_block(layer, "self_attn.k_proj"), self.n_kv_heads)

    def b_V(self, layer: int) -> Float[Tensor, "kv_head d_head"] | None:
        return linear_heads_bias(self.in_block(layer, "self_attn.v_proj"), self.n_kv_heads)

    def W_O(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        return linear_heads_in(self.in_block(layer, self.out_proj_path), self.config.num_attention_heads)

    def W_in(self, layer: int) -> Float[Tensor, "d_model d_mlp"]:
        return self.in_block(layer, self.mlp_in_path).weight.T

    def W_out(self, layer: int) -> Float[Tensor, "d_mlp d_model"]:
        return self.in_block(layer, self.mlp_out_proj_path).weight.T
