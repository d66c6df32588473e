"""What every architecture adapter provides: where things live in the HF module tree.

An adapter never reimplements a model. It names modules (as dotted paths, so a new
family is mostly a table) and reshapes weights into TransformerLens' layouts::

    W_Q[layer]: head d_model d_head      W_O[layer]: head d_head d_model
    W_in[layer]: d_model d_mlp           W_out[layer]: d_mlp d_model
    W_E: d_vocab d_model                 W_U: d_model d_vocab

Hook points attach to those modules (see ``mechscope.hooks.sites``): a point is either
a module's output, a module's input, a norm's scale, or a tensor inside the attention
function that mechscope registers with transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from jaxtyping import Float
from torch import Tensor, nn

from mechscope.hooks.points import KIND_DIMS


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture summary of a wrapped model, in TransformerLens' vocabulary."""

    family: str
    """Adapter family: ``gpt2``, ``llama``, ``gemma3`` or ``gpt_neox``."""
    model_type: str
    """Hugging Face ``config.model_type`` (``llama``, ``qwen2``, ``gemma3_text`` …)."""
    n_layers: int
    """Number of transformer blocks."""
    d_model: int
    """Width of the residual stream."""
    n_heads: int
    """Query heads per attention layer."""
    n_kv_heads: int
    """Key/value heads per layer; fewer than ``n_heads`` under grouped-query attention."""
    d_head: int
    """Width of one head's query, key, value and z."""
    d_mlp: int
    """Width of the MLP's hidden layer."""
    d_vocab: int
    """Vocabulary size (rows of the embedding, columns of the unembedding)."""
    n_ctx: int
    """Longest sequence the model's positions support."""
    act_fn: str
    """MLP activation function, as Hugging Face names it."""
    normalization: str
    """``rmsnorm`` or ``layernorm``."""
    positional: str
    """``rotary`` or ``learned``."""
    parallel_attn: bool
    """Attention and MLP both read the block's input (GPT-NeoX); no ``hook_resid_mid`` then."""
    gated_mlp: bool
    """The MLP multiplies an activated gate by a linear branch (``mlp.hook_pre_linear`` exists)."""
    post_norms: bool
    """Extra norms on the attention and MLP outputs before the residual add (Gemma)."""
    sliding_window: int | None
    """Window of sliding-window attention layers, or None if every layer attends fully."""
    n_params: int
    """Number of parameters (tied weights counted once)."""


class Adapter:
    """Module paths and weight layouts of one Hugging Face causal-LM family.

    Subclasses fill in the class-level paths and the weight methods; everything else is
    shared. Paths are relative to the ``*ForCausalLM`` model (top level) or to one block.
    """

    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    normalization: ClassVar[str]
    positional: ClassVar[str] = "rotary"
    # Top-level modules.
    embed_path: ClassVar[str]
    pos_embed_path: ClassVar[str | None] = None
    layers_path: ClassVar[str]
    final_norm_path: ClassVar[str]
    unembed_path: ClassVar[str]
    # Modules inside one block.
    attn_path: ClassVar[str]
    out_proj_path: ClassVar[str]
    mlp_path: ClassVar[str]
    mlp_in_path: ClassVar[str]
    """Its output is ``mlp.hook_pre``: the gate's pre-activation in gated MLPs."""
    mlp_in_linear_path: ClassVar[str | None] = None
    """Gated MLPs only: its output is ``mlp.hook_pre_linear``."""
    mlp_out_proj_path: ClassVar[str]
    """Its input is ``mlp.hook_post``."""
    norm_paths: ClassVar[dict[str, str]]
    """``ln1``, ``ln2`` and (Gemma) ``ln1_post``, ``ln2_post`` → module path in the block."""

    def __init__(self, hf_model: nn.Module) -> None:
        self.hf_model = hf_model
        self.config = hf_model.config

    # ----------------------------------------------------------------- modules
    def module(self, path: str) -> nn.Module:
        return self.hf_model.get_submodule(path)

    def block(self, layer: int) -> nn.Module:
        return self.module(self.layers_path)[layer]

    def in_block(self, layer: int, path: str) -> nn.Module:
        return self.block(layer).get_submodule(path)

    def norm(self, layer: int | None, which: str) -> nn.Module:
        """A block's norm (``ln1`` …), or the final norm when ``layer`` is None."""
        if layer is None:
            return self.module(self.final_norm_path)
        return self.in_block(layer, self.norm_paths[which])

    def attn_out_module(self, layer: int) -> nn.Module:
        """The module whose output is added to the residual by the attention branch."""
        if "ln1_post" in self.norm_paths:
            return self.norm(layer, "ln1_post")
        return self.in_block(layer, self.attn_path)

    def mlp_out_module(self, layer: int) -> nn.Module:
        """The module whose output is added to the residual by the MLP branch."""
        if "ln2_post" in self.norm_paths:
            return self.norm(layer, "ln2_post")
        return self.in_block(layer, self.mlp_path)

    # ------------------------------------------------- heads into the residual
    head_scale_point: ClassVar[str | None] = None
    """The per-layer hook kind whose value :meth:`heads_to_residual` needs as ``scale``
    (None: the heads' outputs enter the residual as they are)."""

    def heads_to_residual(self, layer: int, parts: Tensor, scale: Tensor | None = None) -> Tensor:
        """Per-head attention outputs ``z[h] @ W_O[h]`` (or the output bias), shaped
        (... d_model), as they enter the residual stream. Here: unchanged, so that the
        heads sum to ``hook_attn_out`` with the bias; a family with a norm after the
        attention output overrides it (``scale``: that norm's scale on this run)."""
        return parts

    def attn_output_scale(self, layer: int, attn_out: Tensor) -> Tensor | None:
        """The ``scale`` :meth:`heads_to_residual` takes, computed from the attention
        branch's output before any post norm (None where there is no post norm)."""
        return None

    def W_O_residual(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        """``W_O`` as a head's output reaches the residual, up to a positive per-token
        factor (the same for every direction, so rankings of logits are unchanged)."""
        return self.W_O(layer)

    # ------------------------------------------------------------ architecture
    @property
    def n_layers(self) -> int:
        return len(self.module(self.layers_path))

    @property
    def parallel_attn(self) -> bool:
        return False

    @property
    def d_head(self) -> int:
        head_dim = getattr(self.config, "head_dim", None)
        return head_dim or self.config.hidden_size // self.config.num_attention_heads

    @property
    def n_kv_heads(self) -> int:
        return getattr(self.config, "num_key_value_heads", None) or self.config.num_attention_heads

    @property
    def d_mlp(self) -> int:
        return self.config.intermediate_size

    @property
    def act_fn(self) -> str:
        return getattr(self.config, "hidden_act", None) or getattr(self.config, "hidden_activation", "")

    def kinds(self) -> set[str]:
        """The hook kinds this architecture has."""
        kinds = set(KIND_DIMS)
        if self.pos_embed_path is None:
            kinds.discard("hook_pos_embed")
        if self.parallel_attn:
            kinds.discard("hook_resid_mid")
        if self.mlp_in_linear_path is None:
            kinds.discard("mlp.hook_pre_linear")
        for norm in ("ln1_post", "ln2_post"):
            if norm not in self.norm_paths:
                kinds.discard(f"{norm}.hook_scale")
        return kinds

    def missing_reasons(self) -> dict[str, str]:
        """Why a standard hook kind is absent here, for error messages."""
        reasons = {}
        if self.parallel_attn:
            reasons["hook_resid_mid"] = (
                f"{self.family} runs attention and MLP in parallel on the block's input, so there is "
                "no residual stream between them; use hook_resid_pre, hook_attn_out or hook_mlp_out"
            )
        if self.pos_embed_path is None:
            reasons["hook_pos_embed"] = f"{self.family} has no learned position embedding ({self.positional})"
        if self.mlp_in_linear_path is None:
            reasons["mlp.hook_pre_linear"] = f"{self.family} has no gated MLP; use mlp.hook_pre"
        for norm in ("ln1_post", "ln2_post"):
            if norm not in self.norm_paths:
                reasons[f"{norm}.hook_scale"] = f"{self.family} has no {norm} norm (only Gemma does)"
        return reasons

    def summary(self) -> ModelConfig:
        params = {id(p): p.numel() for p in self.hf_model.parameters()}
        windows = getattr(self.config, "layer_types", None)
        sliding = getattr(self.config, "sliding_window", None)
        if windows is not None and "sliding_attention" not in windows:
            sliding = None
        return ModelConfig(
            family=self.family,
            model_type=self.config.model_type,
            n_layers=self.n_layers,
            d_model=self.config.hidden_size,
            n_heads=self.config.num_attention_heads,
            n_kv_heads=self.n_kv_heads,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            d_vocab=self.W_E.shape[0],
            n_ctx=self.config.max_position_embeddings,
            act_fn=self.act_fn,
            normalization=self.normalization,
            positional=self.positional,
            parallel_attn=self.parallel_attn,
            gated_mlp=self.mlp_in_linear_path is not None,
            post_norms="ln1_post" in self.norm_paths,
            sliding_window=sliding,
            n_params=sum(params.values()),
        )

    # ------------------------------------------------------------------- norms
    def norm_weight(self, norm: nn.Module) -> Float[Tensor, "d_model"]:
        """The vector a norm multiplies its normalised input by."""
        return norm.weight

    def norm_bias(self, norm: nn.Module) -> Float[Tensor, "d_model"] | None:
        return getattr(norm, "bias", None)

    def norm_eps(self, norm: nn.Module) -> float:
        eps = getattr(norm, "variance_epsilon", None)
        return float(eps if eps is not None else norm.eps)

    # ----------------------------------------------------------------- weights
    @property
    def W_E(self) -> Float[Tensor, "d_vocab d_model"]:
        """Token embedding: ``W_E[token]`` is what ``hook_embed`` holds for that token."""
        return self.module(self.embed_path).weight

    @property
    def W_pos(self) -> Float[Tensor, "n_ctx d_model"]:
        if self.pos_embed_path is None:
            raise AttributeError(f"{self.family} has no learned position embedding")
        return self.module(self.pos_embed_path).weight

    @property
    def W_U(self) -> Float[Tensor, "d_model d_vocab"]:
        return self.module(self.unembed_path).weight.T

    @property
    def b_U(self) -> Float[Tensor, "d_vocab"] | None:
        return getattr(self.module(self.unembed_path), "bias", None)

    def W_Q(self, layer: int) -> Float[Tensor, "head d_model d_head"]:
        raise NotImplementedError

    def W_K(self, layer: int) -> Float[Tensor, "kv_head d_model d_head"]:
        raise NotImplementedError

    def W_V(self, layer: int) -> Float[Tensor, "kv_head d_model d_head"]:
        raise NotImplementedError

    def W_O(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        raise NotImplementedError

    def b_Q(self, layer: int) -> Float[Tensor, "head d_head"] | None:
        return None

    def b_K(self, layer: int) -> Float[Tensor, "kv_head d_head"] | None:
        return None

    def b_V(self, layer: int) -> Float[Tensor, "kv_head d_head"] | None:
        return None

    def b_O(self, layer: int) -> Float[Tensor, "d_model"] | None:
        return getattr(self.in_block(layer, self.out_proj_path), "bias", None)

    def W_in(self, layer: int) -> Float[Tensor, "d_model d_mlp"]:
        raise NotImplementedError

    def W_out(self, layer: int) -> Float[Tensor, "d_mlp d_model"]:
        raise NotImplementedError


class FusedQKVAdapter(Adapter):
    """A family whose Q, K and V come out of one fused projection (GPT-2, GPT-NeoX).

    Subclasses say how to cut the fused weight and bias: ``which`` is 0, 1, 2 for Q, K, V.
    """

    def _qkv(self, layer: int, which: int) -> Float[Tensor, "head d_model d_head"]:
        raise NotImplementedError

    def _qkv_bias(self, layer: int, which: int) -> Float[Tensor, "head d_head"] | None:
        raise NotImplementedError

    def W_Q(self, layer: int) -> Float[Tensor, "head d_model d_head"]:
        return self._qkv(layer, 0)

    def W_K(self, layer: int) -> Float[Tensor, "kv_head d_model d_head"]:
        return self._qkv(layer, 1)

    def W_V(self, layer: int) -> Float[Tensor, "kv_head d_model d_head"]:
        return self._qkv(layer, 2)

    def b_Q(self, layer: int) -> Float[Tensor, "head d_head"] | None:
        return self._qkv_bias(layer, 0)

    def b_K(self, layer: int) -> Float[Tensor, "kv_head d_head"] | None:
        return self._qkv_bias(layer, 1)

    def b_V(self, layer: int) -> Float[Tensor, "kv_head d_head"] | None:
        return self._qkv_bias(layer, 2)


def linear_heads(linear: nn.Linear, n_heads: int) -> Float[Tensor, "head d_model d_head"]:
    """An ``nn.Linear`` from d_model to ``n_heads * d_head``, as per-head matrices."""
    weight = linear.weight  # (head d_head) d_model
    return weight.view(n_heads, -1, weight.shape[-1]).transpose(1, 2)


def linear_heads_bias(linear: nn.Linear, n_heads: int) -> Float[Tensor, "head d_head"] | None:
    """An ``nn.Linear``'s bias split per head, or None if it has none."""
    return None if linear.bias is None else linear.bias.view(n_heads, -1)


def linear_heads_in(linear: nn.Linear, n_heads: int) -> Float[Tensor, "head d_head d_model"]:
    """An ``nn.Linear`` from ``n_heads * d_head`` to d_model, as per-head matrices."""
    weight = linear.weight  # d_model (head d_head)
    return weight.T.reshape(n_heads, -1, weight.shape[0])
