"""What the live pages compute with the model: next tokens, the logit lens, attention
patterns, head roles, SAE features per token. Each is ``fn(model, ...)`` and runs on the
model's worker thread (:class:`~mechscope.app.service.ModelService`).

::

    next_tokens(model, "The Eiffel Tower is in", k=10)["top"][0]   # {"token": " Paris", "prob": 0.7, ...}
    patterns = attention_patterns(model, prompt)                    # every layer, kept; served a layer at a time
    patterns.layer(3)                                               # head × query × key, rounded
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mechscope.errors import InputError


def prompt_tokens(model, prompt: str) -> list[str]:
    """The prompt's tokens as the model sees them (checked against its context)."""
    return model.to_str_tokens(model.to_batch(prompt).ids[0])


def next_tokens(model, prompt: str, k: int) -> dict[str, Any]:
    """The prompt's tokens and the ``k`` most probable next tokens."""
    batch = model.to_batch(prompt)
    with torch.no_grad():
        logits = model(batch)[0, -1].float()
    probs = logits.softmax(-1)
    top = probs.topk(min(k, probs.shape[0]))
    decode = model.tokenizer.decode
    return {"tokens": model.to_str_tokens(batch.ids[0]), "model": model.name,
            "top": [{"token": decode([i]), "id": i, "prob": p, "logit": float(logits[i])}
                    for p, i in zip(top.values.tolist(), top.indices.tolist())]}


def lens_table(model, prompt: str, top_k: int = 3) -> dict[str, Any]:
    """The logit lens of the prompt: top tokens and probabilities, layer × position."""
    from mechscope.lens import logit_lens

    lens = logit_lens(model, prompt, top_k=top_k)
    return {"tokens": list(lens.tokens), "layers": list(lens.layer_labels), "top_tokens": lens.top_tokens,
            "top_probs": _rounded(lens.top_probs), "kl": _rounded(lens.kl_to_final)}


@dataclass(frozen=True)
class Patterns:
    """Attention patterns of one prompt at every layer, kept to be served a layer at a time."""

    tokens: tuple[str, ...]
    values: torch.Tensor
    """layer head query_pos key_pos (float16)."""

    @property
    def n_layers(self) -> int:
        return self.values.shape[0]

    @property
    def n_heads(self) -> int:
        return self.values.shape[1]

    def layer(self, layer: int) -> list:
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer must be in 0..{self.n_layers - 1}; received {layer}")
        return _rounded(self.values[layer].float())


def attention_patterns(model, prompt: str, max_tokens: int) -> Patterns:
    """Every layer's attention pattern on the prompt, in one forward pass."""
    batch = model.to_batch(prompt)
    if batch.ids.shape[1] > max_tokens:
        raise InputError(f"the prompt has {batch.ids.shape[1]} tokens; attention is drawn for at most {max_tokens} "
                         f"(each head's pattern has one row and one column per token): shorten it")
    _, cache = model.run_with_cache(batch, names="blocks.*.attn.hook_pattern")
    stacked = torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(model.cfg.n_layers)])
    return Patterns(tokens=tuple(model.to_str_tokens(batch.ids[0])), values=stacked.to(torch.float16).cpu())


def live_head_labels(model) -> dict[str, str]:
    """Roles of every head, scored on a few repeated random sequences (when no stored run has them)."""
    from mechscope.heads.roles import head_roles

    roles = head_roles(model, n_seqs=4, seq_len=max(2, min(20, model.cfg.n_ctx // 2 - 1)))
    return head_role_labels(roles, None)


def head_role_labels(roles, movers) -> dict[str, str]:
    """``{"L9H6": "induction 0.86, copying 0.41"}`` for every head with a clear role."""
    from mechscope.heads.labels import head_labels

    n_layers, n_heads = roles.induction.shape
    names = [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]
    return {name: ", ".join(f"{role} {score:.2f}" for role, score in found[:3])
            for name, found in head_labels(roles, movers, names).items() if found}


def token_features(model, saes, prompt: str, k: int = 5) -> list[dict[str, Any]]:
    """For each SAE: its hook, and the ``k`` most active features on every token."""
    out = []
    batch = model.to_batch(prompt)
    for index, sae in enumerate(saes):
        hook = sae.cfg.hook_name
        if hook is None:
            raise InputError(f"the SAE {index} does not say which hook it reads (cfg.hook_name); give it one")
        _, cache = model.run_with_cache(batch, names=hook)
        with torch.no_grad():
            latents = sae.encode(cache[hook][0].to(sae.W_enc.dtype))
        top = latents.topk(min(k, latents.shape[-1]), dim=-1)
        per_token = [[{"feature": f, "activation": round(a, 4)} for a, f in zip(values, indices) if a > 0]
                     for values, indices in zip(top.values.tolist(), top.indices.tolist())]
        out.append({"sae": index, "hook_name": hook, "d_sae": latents.shape[-1], "per_token": per_token})
    return out


def _rounded(tensor: torch.Tensor, digits: int = 4) -> list:
    return torch.round(tensor.float(), decimals=digits).tolist()
