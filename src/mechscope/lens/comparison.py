"""Logit lens against tuned lens on held-out text: KL to the output, and perplexity.

For every layer, over held-out tokens the lens never trained on::

    kl         = mean over tokens of KL(model's output ‖ lens)     (0 at the final layer)
    perplexity = exp(mean over tokens of -log p_lens(actual next token))

    cmp = compare_lenses(model, lens, default_texts())
    cmp.tuned_wins          # (True, True, …): tuned KL below logit KL at each layer
    cmp.plot().savefig("lenses.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.corpus import token_batches
from mechscope.errors import InputError
from mechscope.lens.readout import CHUNK_ELEMENTS, LensInputs, read_lens_inputs, unembed
from mechscope.results import Result

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel
    from mechscope.lens.tuned_lens import TunedLens


@dataclass(frozen=True)
class LensComparison(Result):
    """Per-layer quality of the logit lens and a tuned lens on the same held-out tokens."""

    model_name: str
    """The model both lenses read."""
    layer_labels: tuple[str, ...]
    """``L{l}`` for the residual entering block ``l``, then ``final``."""
    logit_kl: Float[Tensor, "layer"]
    """Mean KL(output ‖ logit lens) in nats per layer."""
    tuned_kl: Float[Tensor, "layer"]
    """Mean KL(output ‖ tuned lens) in nats per layer."""
    logit_perplexity: Float[Tensor, "layer"]
    """Perplexity of the actual next token under the logit lens, per layer (float64)."""
    tuned_perplexity: Float[Tensor, "layer"]
    """Perplexity of the actual next token under the tuned lens, per layer."""
    n_tokens: int
    """Held-out tokens the KL averages over."""
    n_predicted: int
    """Held-out tokens with a known next token (the perplexity's count)."""

    @property
    def tuned_wins(self) -> tuple[bool, ...]:
        """Per block input (``final`` excluded, where both lenses are the output): is the
        tuned lens's KL strictly below the logit lens's?"""
        return tuple(bool(t < g) for t, g in zip(self.tuned_kl[:-1], self.logit_kl[:-1]))

    def plot(self) -> Figure:
        """KL to the output (block inputs; it is 0 at ``final``) and next-token perplexity
        against layer, both lenses, on log scales."""
        fig = Figure(figsize=(10, 4), layout="constrained")
        kl_ax, ppl_ax = fig.subplots(1, 2)
        n = len(self.layer_labels)
        panels = [
            (kl_ax, self.logit_kl[:-1], self.tuned_kl[:-1], "KL(output ‖ lens), nats"),
            (ppl_ax, self.logit_perplexity, self.tuned_perplexity, "next-token perplexity"),
        ]
        for ax, logit, tuned, what in panels:
            x = list(range(len(logit)))
            ax.plot(x, logit.tolist(), marker="o", markersize=3, label="logit lens")
            ax.plot(x, tuned.tolist(), marker="o", markersize=3, label="tuned lens")
            ax.set_yscale("log")
            ticks = x[:: max(1, n // 16)]
            ax.set_xticks(ticks)
            ax.set_xticklabels([self.layer_labels[i] for i in ticks], rotation=90, parse_math=False)
            ax.set_xlabel("layer (residual before the block)")
            ax.set_ylabel(what)
            ax.grid(alpha=0.3)
        ppl_ax.axhline(float(self.logit_perplexity[-1]), color="grey", linestyle="--", label="model output")
        kl_ax.legend()
        ppl_ax.legend()
        fig.suptitle(
            f"logit lens vs tuned lens on held-out text ({self.model_name}, {self.n_tokens} tokens)", parse_math=False
        )
        return fig


def compare_lenses(
    model: HookedModel,
    lens: TunedLens,
    texts: Sequence[str],
    *,
    split: str = "heldout",
    max_tokens: int | None = 8192,
    seq_len: int = 128,
    batch_size: int = 8,
) -> LensComparison:
    """Per-layer KL(output ‖ lens) and next-token perplexity of both lenses.

    Args:
        texts: text to evaluate on; by default its held-out split, the part that
            :func:`train_tuned_lens` on the same texts never trains on.
        split: ``heldout`` or ``train`` (the latter to see over-fitting).
        max_tokens: stop after about this many tokens (None: the whole split).
    """
    lens.check_model(model)
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1 or None; received {max_tokens}")
    n_layers = model.cfg.n_layers
    sums = torch.zeros(4, n_layers + 1, dtype=torch.float64)  # logit kl, tuned kl, logit nll, tuned nll
    n_tokens = n_predicted = 0
    for batch in token_batches(model, texts, seq_len=seq_len, batch_size=batch_size, split=split):
        if max_tokens is not None and n_tokens >= max_tokens:
            break
        run = read_lens_inputs(model, batch)
        with torch.no_grad():
            sums += _batch_sums(lens, run)
        n_tokens += int(run.mask.sum())
        n_predicted += int((run.mask[:, :-1] * run.mask[:, 1:]).sum())
    kl = (sums[:2] / n_tokens).float()
    perplexity = (sums[2:] / n_predicted).exp()  # float64: an early layer's can pass float32's 3e38
    return LensComparison(
        model_name=model.name,
        layer_labels=(*(f"L{layer}" for layer in range(n_layers)), "final"),
        logit_kl=kl[0], tuned_kl=kl[1], logit_perplexity=perplexity[0], tuned_perplexity=perplexity[1],
        n_tokens=n_tokens, n_predicted=n_predicted,
    )


def _batch_sums(lens: TunedLens, run: LensInputs) -> Float[Tensor, "4 layer"]:
    """Summed KL over real tokens and summed next-token NLL, per layer, for both lenses."""
    mask = run.mask.float()
    predicted = (run.mask[:, :-1] * run.mask[:, 1:]).double()
    next_ids = run.ids[:, 1:, None]
    n_layers = lens.n_layers
    sums = torch.zeros(4, n_layers + 1, dtype=torch.float64)
    # A few sequences at a time: (rows × pos × vocab) float32 stays near CHUNK_ELEMENTS.
    rows = max(1, CHUNK_ELEMENTS // (run.ids.shape[1] * run.final_logprobs.shape[-1]))
    for lo in range(0, run.ids.shape[0], rows):
        part = slice(lo, lo + rows)
        final = run.final_logprobs[part]
        final_probs = final.exp()
        neg_entropy = (final_probs * final).sum(-1)
        sums[2:, n_layers] += _nll(final, next_ids[part], predicted[part])
        for layer in range(n_layers):
            resid = run.resid[layer, part]
            for which, logits in enumerate((unembed(lens.model, resid), lens.apply(resid, layer))):
                logprobs = logits.float().log_softmax(-1)
                kl = neg_entropy - (final_probs * logprobs).sum(-1)  # KL = Σ p log p - Σ p log q
                sums[which, layer] += float((kl * mask[part]).sum())
                sums[2 + which, layer] += _nll(logprobs, next_ids[part], predicted[part])
    return sums


def _nll(logprobs: Float[Tensor, "batch pos d_vocab"], next_ids: Tensor, predicted: Tensor) -> float:
    """Summed -log p(actual next token) over positions that have one."""
    picked = logprobs[:, :-1].gather(-1, next_ids).squeeze(-1).double()
    return -float((picked * predicted).sum())
