"""Generation through whatever hooks are open: Hugging Face's ``generate`` with the KV cache.

::

    with steer(model, vector, alpha=4.0):
        generate(model, "I think that", max_new_tokens=20)
    generate_uncached(model, "I think that", max_new_tokens=20)   # the slow reference: a full pass per token

``generate`` calls ``model.hf_model.generate``, so every hook context open around it
(``steer``, ``spliced``, ``model.hooks``) acts on every step. :func:`generate_uncached`
is greedy decoding by one full forward pass per new token, with no cache; the tests
hold the two equal under steering. :func:`steered_text` continues a prompt three ways:
plainly, steered, and steered along a random direction of the same norm (the control).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mechscope.errors import InputError
from mechscope.hooks.tokens import pad_id
from mechscope.results import Result
from mechscope.steering.apply import steer
from mechscope.steering.vector import SteeringVector, random_like


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


@torch.no_grad()
def generate_uncached(model, prompt: str, *, max_new_tokens: int = 20, prepend_bos: bool | None = None) -> str:
    """Greedy continuation of one prompt by a full forward pass per new token (no KV cache),
    stopping after EOS as ``generate`` does: the reference it is tested against."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a positive integer; received {max_new_tokens!r}")
    ids = model.to_tokens(prompt, prepend_bos=prepend_bos)
    start = ids.shape[1]
    eos = model.hf_model.generation_config.eos_token_id
    stop = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
    for _ in range(max_new_tokens):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
        if int(ids[0, -1]) in stop:
            break
    return model.tokenizer.decode(ids[0, start:].tolist(), skip_special_tokens=True)


@dataclass(frozen=True)
class SteeredText(Result):
    """One prompt continued plainly, steered, and steered along a random direction of the same norm."""

    prompt: str
    """The prompt."""
    alpha: float
    """The strength."""
    hook_names: tuple[str, ...]
    """Where the vector was added."""
    vector: dict
    """The vector's record (method, position, data, model)."""
    plain: str
    """The unsteered continuation."""
    steered: str
    """The continuation with the vector added."""
    random: str
    """The continuation with a random direction of the same norm added (the control)."""


def steered_text(
    model, vector: SteeringVector, prompt: str, *, alpha: float, layers: Sequence[int] | None = None,
    max_new_tokens: int = 30, do_sample: bool = False, seed: int = 0,
) -> SteeredText:
    """``prompt`` continued without steering, with ``vector`` at strength ``alpha`` (at
    ``layers``, default all of its layers) and with a random vector of the same norms."""
    chosen = vector if layers is None else vector.at(layers)
    options = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, seed=seed)
    plain = generate(model, prompt, **options)
    with steer(model, chosen, alpha=alpha):
        steered = generate(model, prompt, **options)
    with steer(model, random_like(chosen, seed=seed), alpha=alpha):
        control = generate(model, prompt, **options)
    return SteeredText(prompt=prompt, alpha=float(alpha), hook_names=chosen.hook_names, vector=chosen.to_dict(),
                       plain=plain, steered=steered, random=control)
