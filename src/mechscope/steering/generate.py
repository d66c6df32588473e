"""Steering with SAE features: add α times a latent's decoder direction while the model runs.

    with steer(model, sae, feature=1234, alpha=8.0):
        print(generate(model, "I think that", max_new_tokens=20))

α is in the latent's own units: adding ``alpha * W_dec[feature]`` is what the decoder
would add if the latent fired with activation α on top of whatever it already does
(the SAE itself is not spliced in; the rest of the activation is the model's own).
For a transcoder the direction lives in the space it predicts, so it is added at
``hook_name_out``.

``generate`` calls Hugging Face's ``generate`` with the KV cache, so every hook context
open around it (``steer``, ``spliced``, ``model.hooks``) acts on every step. Steering at
a residual-stream point works with the cache: earlier positions' keys and values were
computed with the steered residual when they were first seen, exactly as an uncached
run would compute them. ``from_position`` counts absolute positions (prompt tokens
first), also across cached steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.tokens import pad_id
from mechscope.sae.splice import check_features, check_sae_fits, tracked_inputs


@contextmanager
def steer(model, sae, feature: int, alpha: float, *, from_position: int = 0) -> Iterator:
    """Inside the block, add ``alpha * sae.W_dec[feature]`` at the SAE's hook point
    (``hook_name_out`` for a transcoder) at every position from ``from_position`` on."""
    check_sae_fits(model, sae)
    (feature,) = check_features(sae, [feature])
    if isinstance(from_position, bool) or not isinstance(from_position, int) or from_position < 0:
        raise InputError(f"from_position must be a non-negative integer; received {from_position!r}")
    name = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name
    direction = (float(alpha) * sae.W_dec[feature]).detach()

    with tracked_inputs(model) as state:

        def add(x: Tensor, hook) -> Tensor:
            flat = x.reshape(*x.shape[:2], -1)
            positions = state.offset + torch.arange(x.shape[1], device=x.device)
            on = (positions >= from_position).to(flat.dtype)[None, :, None]
            return (flat + on * direction.to(flat)).reshape(x.shape)

        with model.hooks(fwd=[(name, add)]):
            yield model


def generate(
    model,
    prompt: str | Sequence[str],
    *,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    prepend_bos: bool | None = None,
) -> str | list[str]:
    """The continuation of ``prompt`` (without the prompt), greedy unless ``do_sample``;
    a list of continuations for a list of prompts (left-padded into one batch).

    Runs through whatever hook contexts are open, on every generation step."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a positive integer; received {max_new_tokens!r}")
    if do_sample and temperature <= 0:
        raise InputError(f"temperature must be positive when sampling; received {temperature!r}")
    batch = model.tokenize(prompt, prepend_bos=prepend_bos, padding_side="left")
    if batch.ids.shape[1] + max_new_tokens > model.cfg.n_ctx:
        raise InputError(
            f"the prompt ({batch.ids.shape[1]} tokens) plus max_new_tokens={max_new_tokens} exceeds "
            f"{model.name}'s context of {model.cfg.n_ctx}; shorten one of them"
        )
    options = dict(do_sample=do_sample, max_new_tokens=max_new_tokens, pad_token_id=pad_id(model.tokenizer))
    if do_sample:
        options |= dict(temperature=temperature, top_k=top_k)
    else:  # silence "temperature is set but do_sample=False" from models with sampling defaults
        options |= dict(temperature=None, top_k=None, top_p=None)
    # generate() samples from the global generator; fork it so the caller's stream is untouched.
    cuda = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        ids = model.hf_model.generate(input_ids=batch.ids, attention_mask=batch.attention_mask, **options)
    new = ids[:, batch.ids.shape[1]:]
    texts = [model.tokenizer.decode(row.tolist(), skip_special_tokens=True) for row in new]
    return texts[0] if isinstance(prompt, str) else texts
