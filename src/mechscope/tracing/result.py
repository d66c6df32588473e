"""Results of causal tracing: one fact's grid, and the average over many facts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from mechscope.results import Result

COLORS = {"hidden": "Purples", "mlp": "Greens", "attn": "Reds"}
"""The paper's colour for each restored state."""
TITLES = {"hidden": "single restored layer", "mlp": "restored MLP outputs", "attn": "restored attention outputs"}

BUCKETS = ("first subject token", "middle subject tokens", "last subject token",
           "first subsequent token", "further tokens", "last token")
"""The token groups the paper averages over (Figure 2): positions differ between prompts, these do not."""


@dataclass(frozen=True, kw_only=True)
class CausalTrace(Result):
    """Probability of the answer after restoring each clean state into the corrupted run."""

    prompt: str
    """The traced prompt."""
    subject: str
    """The corrupted subject."""
    answer: str
    """The answer token whose probability is measured."""
    tokens: tuple[str, ...]
    """The prompt's tokens."""
    subject_range: tuple[int, int]
    """First and last token position of the subject."""
    kinds: tuple[str, ...]
    """Restored states, along the first axis of ``scores``."""
    scores: Float[Tensor, "kind layer pos"]
    """p(answer) with the state of (kind, layer, pos) restored (a window of layers for mlp/attn)."""
    low: float
    """p(answer) in the corrupted run (mean over noise samples)."""
    high: float
    """p(answer) in the clean run."""
    window: int
    """Layers restored together for mlp and attn."""
    noise_std: float
    """Standard deviation of the noise added to the subject's embeddings."""

    @property
    def effects(self) -> Float[Tensor, "kind layer pos"]:
        """Indirect effect of each state: ``scores - low``."""
        return self.scores - self.low

    def buckets(self) -> Float[Tensor, "kind bucket layer"]:
        """Indirect effects grouped as :data:`BUCKETS` (mean within a group; NaN if empty)."""
        first, last = self.subject_range
        n = len(self.tokens)
        groups = ([first], list(range(first + 1, last)), [last], [last + 1] if last + 1 < n - 1 else [],
                  list(range(last + 2, n - 1)), [n - 1])
        effects = self.effects
        nan = torch.full(effects.shape[:2], float("nan"))
        return torch.stack([effects[:, :, g].mean(-1) if g else nan for g in groups], dim=1)

    def plot(self) -> Figure:
        """The paper's heatmaps: token × layer, one panel per restored state."""
        labels = [f"{t!r}*" if self.subject_range[0] <= i <= self.subject_range[1] else repr(t)
                  for i, t in enumerate(self.tokens)]
        n_kinds, n_layers, n_pos = self.scores.shape
        fig = Figure(figsize=(4.2 * n_kinds + 1.0, 1.2 + 0.32 * n_pos), layout="constrained")
        axes = fig.subplots(1, n_kinds, squeeze=False)[0]
        for ax, kind, grid in zip(axes, self.kinds, self.scores):
            image = ax.imshow(grid.T.numpy(), cmap=COLORS[kind], vmin=self.low, aspect="auto")
            ax.set_yticks(range(n_pos))
            ax.set_yticklabels(labels, fontsize=8, parse_math=False)
            ax.set_xlabel(f"layer{'' if kind == 'hidden' else f' (window {self.window})'}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"Impact of {TITLES[kind]}", fontsize=10)
            fig.colorbar(image, ax=ax, label=f"p({self.answer.strip()})", shrink=0.8)
        fig.suptitle(f"{self.prompt!r} → {self.answer!r}  (clean {self.high:.3f}, corrupted {self.low:.3f})",
                     fontsize=10)
        return fig


@dataclass(frozen=True, kw_only=True)
class AverageTrace(Result):
    """Average indirect effects over a set of facts, by token group (the paper's Figure 2)."""

    model: str
    """The model traced."""
    kinds: tuple[str, ...]
    """Restored states, along the first axis of ``effects``."""
    effects: Float[Tensor, "kind bucket layer"]
    """Average indirect effect (Δ p(answer)) per token group (:data:`BUCKETS`) and layer."""
    low: float
    """Mean p(answer) of the corrupted runs."""
    high: float
    """Mean p(answer) of the clean runs."""
    n_facts: int
    """How many facts were traced."""
    window: int
    """Layers restored together for mlp and attn."""
    traces: tuple[CausalTrace, ...] = ()
    """The per-fact traces averaged."""

    def peak(self, kind: str, bucket: str) -> tuple[int, float]:
        """(layer, effect) where ``kind``'s average effect at token group ``bucket`` is largest."""
        row = self.effects[self.kinds.index(kind), BUCKETS.index(bucket)]
        layer = int(torch.nan_to_num(row, nan=-float("inf")).argmax())
        return layer, float(row[layer])

    def summary(self) -> dict[str, tuple[int, float]]:
        """The peaks the paper reports: hidden state at the last subject token and the last
        token, MLP at the last subject token, attention at the last token."""
        wanted = {"hidden": ("last subject token", "last token"), "mlp": ("last subject token",),
                  "attn": ("last token", "last subject token")}
        return {f"{kind} @ {bucket}": self.peak(kind, bucket)
                for kind in self.kinds for bucket in wanted[kind]}

    def plot(self) -> Figure:
        """Token group × layer heatmaps of the average indirect effect, one per state."""
        n_kinds, _, n_layers = self.effects.shape
        fig = Figure(figsize=(4.6 * n_kinds + 1.0, 3.4), layout="constrained")
        axes = fig.subplots(1, n_kinds, squeeze=False)[0]
        for i, (ax, kind) in enumerate(zip(axes, self.kinds)):
            grid = self.effects[i].numpy()
            image = ax.imshow(grid, cmap=COLORS[kind], vmin=0.0, aspect="auto")
            ax.set_yticks(range(len(BUCKETS)))
            ax.set_yticklabels(BUCKETS if i == 0 else [""] * len(BUCKETS), fontsize=8)
            ax.set_xlabel(f"layer{'' if kind == 'hidden' else f' (window {self.window})'}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"Average indirect effect, {TITLES[kind]}", fontsize=9)
            fig.colorbar(image, ax=ax, label="AIE (Δ p)", shrink=0.8)
        fig.suptitle(f"{self.model}: causal tracing over {self.n_facts} facts "
                     f"(clean p {self.high:.3f}, corrupted p {self.low:.3f})", fontsize=10)
        return fig
