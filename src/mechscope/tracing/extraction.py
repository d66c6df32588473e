"""Attribute extraction rate (Geva et al. 2023, section 6): which sublayer writes the attribute?

::

    rates = attribute_extraction(model, known[:100])
    rates.rates[rates.sublayers.index("attn")]     # per layer: fraction of facts
    rates.plot().savefig("extraction.png")

At the last position, each layer's attention output and MLP output is read out through
the final norm and the unembedding (as the logit lens reads the residual). An
*extraction event* is a sublayer whose top token is the attribute; the extraction
rate of a sublayer at a layer is the fraction of facts with an event there. The paper
finds attention extracting far more often than the MLPs in the upper layers, and much
less once the last position's attention to the subject is knocked out (``knockout=True``
blocks it in every layer, and the rates are then measured on that run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from mechscope.errors import InputError
from mechscope.facts.dataset import Fact, attribute_token
from mechscope.facts.tokens import subject_span
from mechscope.results import Result
from mechscope.tracing.knockout import SOURCES, _blocker

SUBLAYERS = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}
"""Sublayer outputs read at the last position (what each adds to the residual)."""


@dataclass(frozen=True, kw_only=True)
class ExtractionResult(Result):
    """How often each sublayer's output, read through the unembedding, has the attribute on top."""

    model: str
    """The model."""
    sublayers: tuple[str, ...]
    """``attn`` and ``mlp``, along the first axis of ``rates``."""
    rates: Float[Tensor, "sublayer layer"]
    """Fraction of facts whose sublayer output at that layer ranks the attribute first."""
    knockout: bool
    """Whether the last position's attention to the subject was blocked in every layer."""
    n_facts: int
    """How many facts."""

    def plot(self) -> Figure:
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
        for name, row, color in zip(self.sublayers, self.rates, ("tab:red", "tab:green")):
            ax.plot(range(len(row)), (100 * row).numpy(), color=color, marker="o", markersize=3,
                    label="attention (MHSA)" if name == "attn" else "MLP")
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("attribute extraction rate (%)")
        blocked = ", last→subject attention blocked" if self.knockout else ""
        ax.set_title(f"{self.model}: extraction at the last position, {self.n_facts} facts{blocked}", fontsize=10)
        ax.legend(fontsize=8)
        return fig


@torch.no_grad()
def attribute_extraction(model, facts: Sequence[Fact], *, knockout: bool = False) -> ExtractionResult:
    """Extraction rates of attention and MLP outputs at the last position, per layer."""
    facts = list(facts)
    if not facts:
        raise InputError("no facts given; pass at least one (e.g. known_facts(model).facts)")
    batch = model.tokenize([fact.prompt for fact in facts], padding_side="left")
    answers = torch.tensor([attribute_token(model, fact.attribute) for fact in facts], device=model.device)
    fwd = []
    if knockout:
        spans = [subject_span(model, fact.prompt, fact.subject) for fact in facts]
        fwd = [("blocks.*.attn.hook_attn_scores", _blocker(SOURCES["subject"](batch, spans)))]
    names = [f"blocks.{layer}.{hook}" for hook in SUBLAYERS.values() for layer in range(model.cfg.n_layers)]
    with model.hooks(fwd=fwd):
        _, cache = model.run_with_cache(batch, names=names, positions=-1)
    adapter = model.adapter
    unembed = adapter.module(adapter.unembed_path)
    rates = torch.empty(len(SUBLAYERS), model.cfg.n_layers)
    for s, hook in enumerate(SUBLAYERS.values()):
        for layer in range(model.cfg.n_layers):
            out = cache[f"blocks.{layer}.{hook}"].reshape(len(facts), -1)
            top = unembed(adapter.norm(None, "ln_final")(out)).argmax(-1)
            rates[s, layer] = (top == answers).float().mean().cpu()
    return ExtractionResult(model=model.name, sublayers=tuple(SUBLAYERS), rates=rates, knockout=knockout,
                            n_facts=len(facts))
