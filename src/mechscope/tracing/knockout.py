"""Attention knockout (Geva et al. 2023): through which edges does the attribute reach the last token?

::

    result = attention_knockout(model, known[:100], window=9)
    result.change[result.sources.index("subject")]    # % change of p(attribute) per layer
    result.plot().savefig("knockout.png")

For each layer l, attention from the last position to a set of positions is blocked in
every head of the layers ``l - window//2 … l + window//2`` (their scores set to the
minimum before the softmax), and the relative change of p(attribute) at the last
position is measured, in percent. The paper's finding for GPT-2 and GPT-J: blocking the
*subject* positions hurts in a band of upper-middle layers, after the MLPs have enriched
the subject; blocking the other positions matters earlier; the last position itself
matters little.

**Fast path.** Blocking changes only the last position's queries, so each knocked-out
run recomputes that one position from the first blocked layer, with every other key and
value taken from the unblocked run (:mod:`mechscope.hooks.replay`).
:func:`attention_knockout_reference` runs the whole model per layer, and the tests hold the
two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from mechscope.errors import InputError
from mechscope.facts.dataset import Fact, attribute_token
from mechscope.facts.tokens import subject_span
from mechscope.hooks.replay import record_block_inputs, replay_names, run_from
from mechscope.hooks.tokens import TokenBatch
from mechscope.results import Result

Blocked = Bool[Tensor, "batch key"]


def _subject(batch: TokenBatch, spans: list[range]) -> Blocked:
    mask = torch.zeros_like(batch.ids, dtype=torch.bool)
    shift = batch.ids.shape[1] - batch.attention_mask.sum(-1)  # left padding
    for row, span in enumerate(spans):
        mask[row, int(shift[row]) + span.start : int(shift[row]) + span.stop] = True
    return mask


def _non_subject(batch: TokenBatch, spans: list[range]) -> Blocked:
    mask = batch.attention_mask.bool() & ~_subject(batch, spans)
    mask[:, -1] = False
    return mask


def _last(batch: TokenBatch, spans: list[range]) -> Blocked:
    mask = torch.zeros_like(batch.ids, dtype=torch.bool)
    mask[:, -1] = True
    return mask


SOURCES: dict[str, Callable[[TokenBatch, list[range]], Blocked]] = {
    "subject": _subject,
    "non-subject": _non_subject,
    "last": _last,
}
"""Which key positions the last position is cut off from (given left-padded prompts)."""


@dataclass(frozen=True, kw_only=True)
class KnockoutResult(Result):
    """Relative change of p(attribute) when the last position cannot attend to a set of positions."""

    model: str
    """The model."""
    sources: tuple[str, ...]
    """Blocked position sets (keys of :data:`SOURCES`), along the first axis of ``change``."""
    change: Float[Tensor, "source layer"]
    """Mean relative change of p(attribute) in percent, blocking around each layer."""
    per_fact: Float[Tensor, "source layer fact"]
    """The same per fact."""
    base_prob: float
    """Mean p(attribute) without blocking."""
    window: int
    """Layers blocked together."""
    n_facts: int
    """How many facts."""

    def plot(self) -> Figure:
        """The paper's Figure 2: % change of p(attribute) per layer, one line per position set."""
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
        styles = {"subject": ("tab:green", "-"), "non-subject": ("tab:blue", "--"), "last": ("tab:purple", ":")}
        for source, row in zip(self.sources, self.change):
            color, line = styles.get(source, ("black", "-"))
            ax.plot(range(len(row)), row.numpy(), line, color=color, label=f"last → {source}", linewidth=2)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"layer (window of {self.window})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("% change in p(attribute)")
        ax.set_title(f"{self.model}: attention knockout over {self.n_facts} facts (base p {self.base_prob:.3f})",
                     fontsize=10)
        ax.legend(fontsize=8)
        return fig


def _prepare(model, facts: Sequence[Fact], window: int, sources: Sequence[str]):
    facts = list(facts)
    if not facts:
        raise InputError("no facts given; pass at least one (e.g. known_facts(model).facts)")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InputError(f"window must be a positive integer; received {window!r}")
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise InputError(f"sources must be some of {', '.join(SOURCES)}; received {list(sources)}")
    batch = model.tokenize([fact.prompt for fact in facts], padding_side="left")
    spans = [subject_span(model, fact.prompt, fact.subject) for fact in facts]
    answers = torch.tensor([attribute_token(model, fact.attribute) for fact in facts], device=model.device)
    return batch, spans, answers


def blocked_layers(layer: int, window: int, n_layers: int) -> range:
    """The layers blocked together when knocking out around ``layer``."""
    return range(max(0, layer - window // 2), min(n_layers, layer + window - window // 2))


def _blocker(mask: Blocked):
    """A hook_attn_scores hook: the last query row may not attend to the masked keys."""
    def hook(scores: Tensor, point) -> Tensor:
        scores = scores.clone()
        last = scores[:, :, -1, :]
        scores[:, :, -1, :] = last.masked_fill(mask[:, None, :].to(scores.device), torch.finfo(scores.dtype).min)
        return scores

    return hook


@torch.no_grad()
def attention_knockout(model, facts: Sequence[Fact], *, window: int = 9,
                       sources: Sequence[str] = tuple(SOURCES)) -> KnockoutResult:
    """Block last-position attention to each position set around each layer (fast path)."""
    batch, spans, answers = _prepare(model, facts, window, sources)
    n_layers, rows = model.cfg.n_layers, torch.arange(len(answers), device=model.device)
    with record_block_inputs(model) as inputs:
        logits, cache = model.run_with_cache(batch, names=replay_names(model))
    base = logits[:, -1].float().softmax(-1)[rows, answers]
    start = batch.ids.shape[1] - 1
    readout = torch.full((len(answers),), start)
    probs = torch.empty(len(sources), n_layers, len(answers))
    for s, source in enumerate(sources):
        hook = _blocker(SOURCES[source](batch, spans))
        for layer in range(n_layers):
            blocked = blocked_layers(layer, window, n_layers)
            out = run_from(model, inputs, cache, layer=blocked.start, start=start, readout=readout,
                           fwd=[(f"blocks.{b}.attn.hook_attn_scores", hook) for b in blocked])
            probs[s, layer] = out.float().softmax(-1)[rows, answers].cpu()
    return _knockout_result(model, sources, probs, base.cpu(), window)


@torch.no_grad()
def attention_knockout_reference(model, facts: Sequence[Fact], *, window: int = 9,
                                 sources: Sequence[str] = tuple(SOURCES)) -> KnockoutResult:
    """The slow reference: one full forward of all prompts per (position set, layer)."""
    batch, spans, answers = _prepare(model, facts, window, sources)
    n_layers, rows = model.cfg.n_layers, torch.arange(len(answers), device=model.device)
    base = model(batch)[:, -1].float().softmax(-1)[rows, answers]
    probs = torch.empty(len(sources), n_layers, len(answers))
    for s, source in enumerate(sources):
        hook = _blocker(SOURCES[source](batch, spans))
        for layer in range(n_layers):
            names = [(f"blocks.{b}.attn.hook_attn_scores", hook) for b in blocked_layers(layer, window, n_layers)]
            probs[s, layer] = model.run_with_hooks(batch, fwd=names)[:, -1].float().softmax(-1)[rows, answers].cpu()
    return _knockout_result(model, sources, probs, base.cpu(), window)


def _knockout_result(model, sources, probs: Tensor, base: Tensor, window: int) -> KnockoutResult:
    per_fact = (probs - base) / base.clamp_min(1e-12) * 100.0
    return KnockoutResult(model=model.name, sources=tuple(sources), change=per_fact.mean(-1), per_fact=per_fact,
                          base_prob=float(base.mean()), window=window, n_facts=len(base))
