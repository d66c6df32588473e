"""Reading the residual stream out as next-token logits: what every lens shares.

A lens decodes the residual stream *before* block ``l`` as if the model ended there: it
puts the residual through the model's own final norm (computing that residual's own
norm scale, not the scale of the final residual) and then the unembedding::

    logits = unembed(resid)                      # logit lens: W_U · ln_final(resid) + b_U
    logits = unembed(resid + A_l·resid + b_l)    # tuned lens: translate first

The norm is the model's own module (RMSNorm, LayerNorm or Gemma's ``1 + w`` RMSNorm),
so no architecture is reimplemented here, and on the final residual ``unembed`` gives
the model's own logits.

``read_lens_inputs`` runs a batch once and keeps what lens training and evaluation need: the
residual before every block and the model's final log-probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel, ModelInput

CHUNK_ELEMENTS = 2**26
"""Logits a lens keeps at once (tokens × vocabulary): 256 MB in float32."""


def unembed(model: HookedModel, resid: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_vocab"]:
    """Final norm then unembedding (and Gemma's final soft-capping, where configured).

    The unembedding is used detached (its gradient would cost as much as the logits
    themselves); lens training asks autograd for the translators' gradients only
    (``backward(inputs=...)``), so the frozen model's ``.grad`` stays untouched.
    """
    weight, bias = unembedding(model)
    logits = F.linear(final_norm(model, resid), weight, bias)
    cap = softcap(model)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits


def final_norm(model: HookedModel, resid: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
    """The model's own final norm, applied with ``resid``'s own scale."""
    norm = model.adapter.norm(None, "ln_final")
    # Call forward directly: a lens reads the model's weights, so hooks that a caller
    # has open on ln_final (e.g. a patched scale) must not fire on the lens's input.
    return norm.forward(resid)


def unembedding(model: HookedModel) -> tuple[Float[Tensor, "d_vocab d_model"], Float[Tensor, "d_vocab"] | None]:
    """The output head's weight and bias (None if it has none), detached."""
    head = model.adapter.module(model.adapter.unembed_path)
    bias = getattr(head, "bias", None)
    return head.weight.detach(), None if bias is None else bias.detach()


def softcap(model: HookedModel) -> float | None:
    """Gemma 2/3 soft-cap the logits after ``lm_head`` (off in Gemma 3 by default)."""
    return getattr(model.hf_model.config, "final_logit_softcapping", None)


def kl_from_final(
    final_logprobs: Float[Tensor, "... d_vocab"], lens_logits: Float[Tensor, "... d_vocab"]
) -> Float[Tensor, "..."]:
    """KL(final ‖ lens) in nats, per position: how much the lens misses of the output."""
    lens_logprobs = lens_logits.float().log_softmax(-1)
    return F.kl_div(lens_logprobs, final_logprobs.float(), log_target=True, reduction="none").sum(-1)


def answer_token_id(model: HookedModel, answer: str | int) -> int:
    """One vocabulary id for an answer given as text (one token) or as an id."""
    d_vocab = model.cfg.d_vocab
    if isinstance(answer, bool) or not isinstance(answer, (str, int)):
        raise InputError(f"answer must be a token's text (e.g. ' Paris') or its id; received {type(answer).__name__}")
    if isinstance(answer, int):
        if not 0 <= answer < d_vocab:
            raise InputError(f"answer id must lie in [0, {d_vocab}); received {answer}")
        return answer
    if not answer:
        raise InputError("answer is empty; give the next token's text, e.g. ' Paris' (mind the leading space)")
    ids = model.tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"answer {answer!r} tokenizes to no tokens; give the next token's text, e.g. ' Paris'")
    if len(ids) > 1:
        pieces = [model.tokenizer.decode([i]) for i in ids]
        hint = "" if answer.startswith(" ") else " (BPE tokenizers usually want the leading space: ' Paris')"
        raise InputError(
            f"answer must be a single token; {answer!r} tokenizes to {len(ids)} tokens {pieces}. "
            f"Give one token, e.g. its first piece {pieces[0]!r}{hint}"
        )
    return int(ids[0])


@dataclass(frozen=True)
class LensInputs:
    """What one run of a batch gives a lens: residuals, final log-probs, which tokens count."""

    resid: Float[Tensor, "layer batch pos d_model"]
    """``resid_pre`` of every block, in order (the residual a lens at that layer decodes)."""
    final_logprobs: Float[Tensor, "batch pos d_vocab"]
    """The model's own next-token log-probabilities (float32)."""
    mask: Int[Tensor, "batch pos"]
    """1 on real tokens, 0 on padding."""
    ids: Int[Tensor, "batch pos"]
    """The token ids (for next-token perplexity)."""


def read_lens_inputs(model: HookedModel, batch: ModelInput) -> LensInputs:
    """Run ``batch`` (token ids, a TokenBatch …) once, without gradients, keeping
    ``resid_pre`` of every block and the final log-probabilities."""
    logits, cache = model.run_with_cache(batch, names="blocks.*.hook_resid_pre")
    resid = torch.stack([cache["resid_pre", layer] for layer in range(model.cfg.n_layers)])
    return LensInputs(resid, logits.float().log_softmax(-1), cache.batch.attention_mask, cache.batch.ids)
