"""Toy models whose head roles are known because we wrote them in.

``ov_toy`` takes a tiny Llama-family model and overwrites its embedding, unembedding and
norms so that token ``t`` lives in the first ``d_head`` dimensions as a unit vector
``p_t``. Layer 0's head 1 then gets an OV circuit that copies (``p_t -> p_t``), head 3 one
that suppresses (``p_t -> -p_t``). Each goes through its own key/value head's value
matrix ``S R_k`` (a random rotation per kv head) and undoes exactly that rotation in its
``W_O``, so reading the wrong kv head under grouped-query attention breaks the copy.

Since distinct unit vectors satisfy ``p_t·p_t = 1 > p_t·p_s``, the copier ranks the
attended token strictly first among any candidates, the suppressor strictly last. With
``successor=True`` the unembedding of token ``s`` is ``p_{s-1}``, so the copier's output
ranks ``t + 1`` first instead: a successor head.
"""

from __future__ import annotations

import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel

COPIER = (0, 1)
SUPPRESSOR = (0, 3)


def _orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator))
    return q


def ov_toy(arch: str = "llama-gqa", *, successor: bool = False) -> HookedModel:
    hf = tiny_hf_model(arch)
    cfg = hf.config
    d_model, n_heads = cfg.hidden_size, cfg.num_attention_heads
    n_kv = cfg.num_key_value_heads
    d_head = d_model // n_heads
    group = n_heads // n_kv
    generator = torch.Generator().manual_seed(1)
    p = torch.nn.functional.normalize(torch.randn(cfg.vocab_size, d_head, generator=generator), dim=-1)
    select = torch.eye(d_model)[:, :d_head]  # S: d_model -> first d_head dims
    attn = hf.model.layers[0].self_attn
    rotations: dict[int, torch.Tensor] = {}  # one per kv head: heads sharing it must agree
    with torch.no_grad():
        hf.model.embed_tokens.weight.zero_()[:, :d_head] = p
        hf.lm_head.weight.zero_()[:, :d_head] = p.roll(1, dims=0) if successor else p
        hf.model.norm.weight.fill_(1.0)
        for layer in hf.model.layers:
            layer.input_layernorm.weight.fill_(1.0)
        for proj in (attn.v_proj, attn.o_proj):
            if proj.bias is not None:
                proj.bias.zero_()
        for head, sign in ((COPIER[1], 1.0), (SUPPRESSOR[1], -1.0)):
            kv = head // group
            rotation = rotations.setdefault(kv, _orthogonal(d_head, generator))
            w_v = select @ rotation  # d_model d_head: v = x S R
            attn.v_proj.weight[kv * d_head : (kv + 1) * d_head] = w_v.T
            # W_O[head] = (S R)^T, so z @ W_O = x S R Rᵀ Sᵀ = x S Sᵀ: the token's own p_t back.
            attn.o_proj.weight[:, head * d_head : (head + 1) * d_head] = sign * w_v
    return HookedModel(hf, tiny_tokenizer(), name=f"ov-toy-{arch}")
