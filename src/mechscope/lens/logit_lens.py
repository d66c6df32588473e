"""The logit lens: decode the residual stream before every block as next-token logits.

What would the model predict if it stopped at block ``l``? Put the residual entering
block ``l`` through the model's own final norm (with that residual's own scale) and the
unembedding, at every position::

    result = logit_lens(model, "The Eiffel Tower is located in the city of", answer=" Paris")
    result.top_tokens[20][-1]      # top-5 tokens read at layer 20, last position
    result.answer_ranks[:, -1]     # rank of " Paris" at the last position, layer by layer
    result.plot().savefig("lens.png")

Rows are the residual before each block (``L0`` … ``L{n-1}``) plus ``final``, the residual
after the last block, whose decoding is the model's own next-token distribution. Given a
:class:`TunedLens`, each residual is translated first: the same picture through the
tuned lens.

One prompt at a time: the result is a layer × position grid labelled with that prompt's
tokens, so a batch of several prompts is refused rather than silently cut to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
from jaxtyping import Float, Int
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.tokens import TokenBatch
from mechscope.lens.readout import answer_token_id, kl_from_final, unembed
from mechscope.results import Result
from mechscope.viz.heatmap import heatmap, token_labels

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel, ModelInput
    from mechscope.lens.tuned_lens import TunedLens

MAX_ANNOTATED_POSITIONS = 40
"""Beyond this many positions the heatmap's cells are too small to carry token text."""
MAX_PLOTTED_POSITIONS = 64
"""The figure draws at most this many positions (the last ones); the result keeps all it read."""


@dataclass(frozen=True)
class LogitLensResult(Result):
    """Next-token predictions read from the residual stream, layer × position."""

    model_name: str
    """The model the lens read."""
    lens: str
    """``logit lens`` or ``tuned lens``."""
    tokens: tuple[str, ...]
    """The tokens at the positions read, as text (the columns)."""
    layer_labels: tuple[str, ...]
    """``L{l}`` for the residual entering block ``l``, then ``final`` (the rows)."""
    top_token_ids: Int[Tensor, "layer pos k"]
    """Ids of the ``k`` most probable next tokens at each layer and position, best first."""
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]
    """The same tokens as text: ``top_tokens[layer][pos][i]``."""
    top_probs: Float[Tensor, "layer pos k"]
    """Their probabilities under the lens."""
    kl_to_final: Float[Tensor, "layer pos"]
    """KL(model's output ‖ lens) in nats: how far each layer's reading is from the output
    (0 at ``final``)."""
    answer: str | None = None
    """The answer token as text, if one was given."""
    answer_id: int | None = None
    """Its vocabulary id."""
    answer_probs: Float[Tensor, "layer pos"] | None = None
    """Probability of the answer as the next token at each layer and position."""
    answer_ranks: Int[Tensor, "layer pos"] | None = None
    """Its rank there: 1 means the lens's top token (ties share the better rank)."""
    positions: tuple[int, ...] = ()
    """The position in the prompt of each column (empty: every position, from 0)."""
    n_prompt_tokens: int | None = None
    """How many tokens the prompt has (None: as many as ``tokens``)."""

    def plot(self, *, max_positions: int = MAX_PLOTTED_POSITIONS) -> Figure:
        """Heatmap of the answer's probability (else the top token's), layer × position,
        each cell labelled with the lens's top token when the prompt is short enough.
        At most the last ``max_positions`` positions are drawn; the title says so."""
        if self.answer_probs is not None:
            values, what = self.answer_probs, f"p({self.answer!r})"
        else:
            values, what = self.top_probs[..., 0], "top-1 probability"
        positions = self.positions or tuple(range(len(self.tokens)))
        shown = slice(max(0, len(positions) - max_positions), None)
        values, tokens, top_tokens = values[:, shown], self.tokens[shown], [row[shown] for row in self.top_tokens]
        total = self.n_prompt_tokens or len(self.tokens)
        left_out = ("" if len(tokens) == total
                    else f"; {len(tokens)} of {total} positions, {positions[shown][0]}–{positions[-1]}")
        fig = heatmap(
            values,
            row_labels=self.layer_labels,
            col_labels=token_labels(tokens, positions[shown]),
            title=f"{self.lens}: {what} ({self.model_name}{left_out})",
            xlabel="position (token read)",
            ylabel="layer (residual before the block)",
            colorbar_label=what,
            centered=False,
        )
        if len(tokens) <= MAX_ANNOTATED_POSITIONS:
            ax, bright = fig.axes[0], float(values.max()) / 2
            for row, per_pos in enumerate(top_tokens):
                for col, top in enumerate(per_pos):
                    text = _cell_text(top[0])
                    colour = "black" if float(values[row, col]) > bright else "white"
                    # parse_math=False: a token such as "$x$" is text, not mathtext.
                    ax.text(col, row, text, ha="center", va="center", fontsize=6, color=colour, parse_math=False)
        return fig


def logit_lens(
    model: HookedModel,
    input: ModelInput,
    *,
    answer: str | int | None = None,
    top_k: int = 5,
    tuned_lens: TunedLens | None = None,
    positions: Sequence[int] | None = None,
) -> LogitLensResult:
    """Decode the residual before every block (and the final one) at every position
    (or at ``positions`` only: a long prompt's result grows with every position kept).

    Args:
        input: one prompt (text, 1-d ids, or a one-row TokenBatch).
        answer: a next token to follow (its text, one token, e.g. ``" Paris"``, or its id).
        top_k: how many top tokens to keep per layer and position.
        tuned_lens: read through this tuned lens's translators instead (see
            :class:`TunedLens`); None reads the plain logit lens.
        positions: the positions to read (default all), in increasing order.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= model.cfg.d_vocab:
        raise InputError(f"top_k must be an int in 1..{model.cfg.d_vocab}; received {top_k!r}")
    answer_id = None if answer is None else answer_token_id(model, answer)
    if tuned_lens is not None:
        tuned_lens.check_model(model)
    batch = _one_prompt(model, input)
    n_pos = batch.ids.shape[1]
    keep = _positions(positions, n_pos)
    logits, cache = model.run_with_cache(batch, names="blocks.*.hook_resid_pre")
    final_logprobs = logits[0, keep].float().log_softmax(-1)
    n_layers = model.cfg.n_layers

    rows = []
    with torch.no_grad():
        for layer in range(n_layers + 1):
            if layer == n_layers:  # the model's own output, bit for bit
                lens_logits = logits[0, keep]
            elif tuned_lens is None:
                lens_logits = unembed(model, cache["resid_pre", layer][0, keep])
            else:
                lens_logits = tuned_lens.apply(cache["resid_pre", layer][0, keep], layer)
            rows.append(_read(lens_logits.float(), final_logprobs, top_k, answer_id))

    def stacked(field: str) -> Tensor | None:
        if answer_id is None and field.startswith("answer"):
            return None
        return torch.stack([getattr(row, field) for row in rows]).cpu()

    top_ids = stacked("top_ids")
    decode = model.tokenizer.decode
    vocab_text = {i: decode([i]) for i in top_ids.unique().tolist()}
    return LogitLensResult(
        model_name=model.name,
        lens="logit lens" if tuned_lens is None else "tuned lens",
        tokens=tuple(decode([int(t)]) for t in batch.ids[0, keep]),
        layer_labels=(*(f"L{layer}" for layer in range(n_layers)), "final"),
        top_token_ids=top_ids,
        top_tokens=tuple(tuple(tuple(vocab_text[i] for i in pos) for pos in layer) for layer in top_ids.tolist()),
        top_probs=stacked("top_probs"),
        kl_to_final=stacked("kl"),
        answer=None if answer_id is None else decode([answer_id]),
        answer_id=answer_id,
        answer_probs=stacked("answer_prob"),
        answer_ranks=stacked("answer_rank"),
        positions=tuple(keep),
        n_prompt_tokens=n_pos,
    )


def _positions(positions: Sequence[int] | None, n_pos: int) -> list[int]:
    """The positions to read, checked: increasing, each in 0..n_pos-1."""
    if positions is None:
        return list(range(n_pos))
    keep = [int(p) for p in positions]
    if not keep or any(not 0 <= p < n_pos for p in keep) or keep != sorted(set(keep)):
        raise InputError(f"positions must be increasing positions in 0..{n_pos - 1} (the prompt has {n_pos} tokens); "
                         f"received {list(positions)[:10]}")
    return keep


class _Reading(NamedTuple):
    """What one layer's lens reads at every position."""

    top_ids: Tensor
    top_probs: Tensor
    kl: Tensor
    answer_prob: Tensor | None
    answer_rank: Tensor | None


def _read(lens_logits: Float[Tensor, "pos d_vocab"], final_logprobs, top_k: int, answer_id: int | None) -> _Reading:
    """Top-k, KL to the output and (optionally) the answer's prob and rank, for one layer."""
    logprobs = lens_logits.log_softmax(-1)
    top = logprobs.topk(top_k, dim=-1)
    kl = kl_from_final(final_logprobs, lens_logits)
    if answer_id is None:
        return _Reading(top.indices, top.values.exp(), kl, None, None)
    # Rank by strict comparison of logits: tied tokens share the better rank.
    rank = (lens_logits > lens_logits[:, answer_id : answer_id + 1]).sum(-1) + 1
    return _Reading(top.indices, top.values.exp(), kl, logprobs[:, answer_id].exp(), rank)


def _cell_text(token: str) -> str:
    """A token short and visible enough to print inside a heatmap cell."""
    shown = token.replace("\n", "\\n").replace("\t", "\\t")
    return (shown if shown.strip() else repr(shown))[:8]


def _one_prompt(model: HookedModel, input: ModelInput) -> TokenBatch:
    batch = model.to_batch(input)
    if batch.ids.shape[0] != 1:
        raise InputError(
            f"the logit lens reads one prompt (a layer × position grid labelled with its tokens); "
            f"received {batch.ids.shape[0]} prompts. Call logit_lens once per prompt"
        )
    if batch.has_padding:  # a padded single row: keep its real tokens only
        ids = batch.ids[batch.attention_mask.bool()].unsqueeze(0)
        batch = TokenBatch(ids, torch.ones_like(ids))
    return batch
