"""Where and how hard to steer: a layer × strength grid of effect and cost, against random
directions of the same norm.

::

    vector = make_vector(model, make_pairs("weddings", model), layers=range(0, 30, 3))
    sweep = steering_sweep(model, vector, target_words(model, prompts, [" wedding", " bride"]),
                           NeutralText.of(model), config=SweepConfig(alphas=(0.25, 0.5, 1), max_kl=0.5))
    sweep.recommended            # the best layer and strength whose KL stays under max_kl
    sweep.plot().savefig("weddings_sweep.png")

Each cell steers *one* layer of the vector at strength ``alpha`` and measures (a) the
effect (any :class:`~mechscope.steering.measure.Effect`: a task's metric, the
log-probability of target words) and (b) the cost on neutral text (KL from the unsteered
model per token, and perplexity). The same cell is measured with ``n_random`` random
directions of the same norm at that layer: an effect that a random push of the same size
also has is not the vector's. The recommendation is the cell of largest effect whose KL
is at most ``max_kl`` and whose effect gain beats the random directions' mean gain there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.errors import InputError, check_int
from mechscope.results import Result
from mechscope.steering.apply import steer
from mechscope.steering.measure import Effect, NeutralText
from mechscope.steering.vector import SteeringVector, random_like


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """The grid and the cost limit of a steering sweep."""

    alphas: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0)
    """Strengths tried (multiples of each layer's direction)."""
    n_random: int = 2
    """Random directions per layer, each measured at every strength."""
    seed: int = 0
    """Seeds the random directions."""
    max_kl: float = 0.5
    """The cost limit for the recommendation: mean KL per token on neutral text, in nats."""

    def __post_init__(self) -> None:
        alphas = tuple(self.alphas)
        if not alphas or any(isinstance(a, bool) or not isinstance(a, (int, float)) for a in alphas):
            raise InputError(f"SweepConfig.alphas must be one or more numbers; received {self.alphas!r}")
        object.__setattr__(self, "alphas", tuple(float(a) for a in alphas))
        check_int("SweepConfig.n_random", self.n_random, minimum=1)
        check_int("SweepConfig.seed", self.seed, minimum=0)
        if isinstance(self.max_kl, bool) or not isinstance(self.max_kl, (int, float)) or self.max_kl <= 0:
            raise InputError(f"SweepConfig.max_kl must be a positive number of nats; received {self.max_kl!r}")


@dataclass(frozen=True)
class SweepChoice:
    """One cell of a sweep: a layer and a strength, with what they do."""

    layer: int
    """The layer steered."""
    alpha: float
    """The strength."""
    effect: float
    """The effect there."""
    kl: float
    """Mean KL per token on neutral text."""
    perplexity: float
    """Neutral text's perplexity."""
    random_effect: float
    """Mean effect of the random directions at the same layer and strength."""


@dataclass(frozen=True)
class SteeringSweep(Result):
    """Effect and cost of steering each layer at each strength, and of random directions."""

    effect_name: str
    """What the effect measures."""
    method: str
    """The vector's method."""
    source: str
    """The data the vector came from."""
    layers: tuple[int, ...]
    """Rows of the grids."""
    alphas: tuple[float, ...]
    """Columns of the grids."""
    plain_effect: float
    """The effect without steering."""
    plain_perplexity: float
    """Neutral text's perplexity without steering."""
    effect: Float[Tensor, "layer alpha"]
    """The effect when steering."""
    kl: Float[Tensor, "layer alpha"]
    """Mean KL per token from the unsteered model on neutral text (nats)."""
    perplexity: Float[Tensor, "layer alpha"]
    """Neutral text's perplexity when steering."""
    random_effect: Float[Tensor, "layer alpha"]
    """The random directions' mean effect."""
    random_kl: Float[Tensor, "layer alpha"]
    """The random directions' mean KL."""
    max_kl: float
    """The cost limit the recommendation respects."""
    recommended: SweepChoice | None
    """The best cell under the cost limit that beats random; None if none does."""

    def recommend(self, max_kl: float) -> SweepChoice | None:
        """The cell of largest effect with ``kl <= max_kl`` whose effect gain beats the random
        directions' at the same cell; None when no cell qualifies."""
        allowed = (self.kl <= max_kl) & (self.effect > self.random_effect)
        if not bool(allowed.any()):
            return None
        masked = torch.where(allowed, self.effect, torch.tensor(float("-inf")))
        row, col = divmod(int(masked.argmax()), len(self.alphas))
        return SweepChoice(layer=self.layers[row], alpha=self.alphas[col], effect=float(self.effect[row, col]),
                           kl=float(self.kl[row, col]), perplexity=float(self.perplexity[row, col]),
                           random_effect=float(self.random_effect[row, col]))

    def plot(self) -> Figure:
        """Effect gain (steered, random) and KL as layer × strength grids; the recommendation boxed."""
        fig = Figure(figsize=(4 + 1.9 * len(self.alphas), 1.8 + 0.3 * len(self.layers)), layout="constrained")
        panels = [("effect gain: steering vector", self.effect - self.plain_effect, "RdBu_r"),
                  ("effect gain: random directions", self.random_effect - self.plain_effect, "RdBu_r"),
                  ("cost: KL on neutral text (nats)", self.kl, "magma_r")]
        axes = fig.subplots(1, 3, sharey=True)
        bound = float(torch.cat([panels[0][1], panels[1][1]]).abs().max()) or 1.0
        for ax, (title, grid, cmap) in zip(axes, panels):
            top = bound if cmap == "RdBu_r" else float(grid.max()) or 1.0
            image = ax.imshow(grid.numpy(), cmap=cmap, aspect="auto", vmin=-top if cmap == "RdBu_r" else 0, vmax=top)
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    value = float(grid[i, j])  # white text on the dark ends of the colour map
                    ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=7,
                            color="white" if abs(value) > 0.6 * top else "black")
            ax.set_xticks(range(len(self.alphas)), [f"{a:g}" for a in self.alphas])
            ax.set_xlabel("strength α")
            ax.set_title(title, fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8)
        axes[0].set_yticks(range(len(self.layers)), [f"L{layer}" for layer in self.layers])
        axes[0].set_ylabel("layer steered")
        if self.recommended is not None:
            row, col = self.layers.index(self.recommended.layer), self.alphas.index(self.recommended.alpha)
            for ax in axes:
                ax.add_patch(_box(col, row))
        fig.suptitle(f"{self.method} steering, {self.effect_name} (unsteered {self.plain_effect:.3g}); box: best "
                     f"under KL ≤ {self.max_kl:g}", fontsize=10)
        return fig


def _box(col: int, row: int):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="lime", linewidth=2.5)


def default_sweep_layers(model, count: int = 10) -> list[int]:
    """About ``count`` evenly spaced layers, from the first."""
    return list(range(0, model.cfg.n_layers, max(1, model.cfg.n_layers // count)))


def steering_sweep(
    model, vector: SteeringVector, effect: Effect, neutral: NeutralText, *, config: SweepConfig = SweepConfig(),
    progress: bool = False,
) -> SteeringSweep:
    """Measure ``effect`` and the cost on ``neutral`` steering each of ``vector``'s layers
    alone at each of ``config.alphas``, and the same with random directions."""
    vector.check_fits(model)
    plain_effect = effect(model)
    names = vector.hook_names
    grids = torch.zeros(5, len(names), len(config.alphas))  # effect, kl, perplexity, random effect, random kl
    cells = [(i, j) for i in range(len(names)) for j in range(len(config.alphas))]
    for i, j in tqdm(cells, desc="steering sweep", disable=not progress):
        layer = vector.layers[i]
        single = vector.at(layer)
        with steer(model, single, alpha=config.alphas[j]):
            grids[0, i, j] = effect(model)
            grids[1, i, j], grids[2, i, j] = neutral.cost(model)
        measured = []
        for r in range(config.n_random):
            control = random_like(single, seed=config.seed + 1000 * layer + r)
            with steer(model, control, alpha=config.alphas[j]):
                measured.append((effect(model), neutral.cost(model)[0]))
        grids[3, i, j], grids[4, i, j] = torch.tensor(measured).mean(0)
    sweep = SteeringSweep(
        effect_name=effect.name, method=vector.method, source=vector.source, layers=vector.layers,
        alphas=config.alphas, plain_effect=plain_effect, plain_perplexity=neutral.plain_perplexity,
        effect=grids[0], kl=grids[1], perplexity=grids[2], random_effect=grids[3], random_kl=grids[4],
        max_kl=float(config.max_kl), recommended=None,
    )
    return dataclasses.replace(sweep, recommended=sweep.recommend(sweep.max_kl))
