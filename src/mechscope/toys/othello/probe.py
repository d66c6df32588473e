"""Does Othello-GPT hold a board? Linear probes on its residual stream (Li et al.; Nanda 2023).

After each move, every square is empty or holds one of two colours. Li et al. found that
a *linear* probe reads the board poorly in the "black / white" basis and needed a
non-linear one; Nanda found that the model represents it linearly in the basis of the
player to move: "mine / theirs / empty". Both bases are probed here, at every layer,
on held-out games, beside the same probe on a randomly initialised model (the control:
what the tokens alone make readable)::

    probes = board_probes(run.model, random_games(3000, seed=...))
    probes.accuracy["mine_theirs"]             # per layer (0: embeddings)
    probes.best_layer("mine_theirs"), probes.plot()

Accuracies are over occupied squares (``occupied_accuracy``, what a board needs beyond
which squares were played) and over all squares (``accuracy``).
The probe is :mod:`mechscope.toys.linear_probe`'s: 64 labels per example in one fit, which
:mod:`mechscope.probes` (one label per example) does not do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.results import Result
from mechscope.toys.linear_probe import IGNORE, LinearProbe, fit_linear_probe
from mechscope.toys.othello.game import Games
from mechscope.toys.othello.model import N_CTX, move_tokens

EMPTY_CLASS = 0
"""Class 0 is an empty square in every basis."""


def mine_theirs(games: Games) -> Int[Tensor, "game pos square"]:
    """0 empty, 1 the next player's disc (mine), 2 the other's (theirs); ``IGNORE`` once the game is over."""
    relative = games.boards[:, :N_CTX] * games.next_player[:, :N_CTX, None]
    labels = np.select([relative == 1, relative == -1], [1, 2], 0)
    labels[games.next_player[:, :N_CTX] == 0] = IGNORE
    return torch.from_numpy(labels)


def black_white(games: Games) -> Int[Tensor, "game pos square"]:
    """0 empty, 1 black, 2 white; ``IGNORE`` once the game is over (as in ``mine_theirs``)."""
    boards = games.boards[:, :N_CTX]
    labels = np.select([boards == 1, boards == -1], [1, 2], 0)
    labels[games.next_player[:, :N_CTX] == 0] = IGNORE
    return torch.from_numpy(labels)


BASES: dict[str, Callable[[Games], Tensor]] = {"mine_theirs": mine_theirs, "black_white": black_white}
"""Board labellings a probe can be trained on, by name."""


def residuals(model: HookedModel, games: Games, *, batch_size: int = 250) -> Float[Tensor, "layer game pos d_model"]:
    """The residual stream after each move: layer 0 the embeddings, layer ``l`` after block ``l - 1``."""
    tokens = move_tokens(games)[:, :N_CTX]
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(model.cfg.n_layers)]
    chunks = []
    with torch.no_grad():
        for first in range(0, len(tokens), batch_size):
            _, cache = model.run_with_cache(tokens[first : first + batch_size], names=names)
            chunks.append(torch.stack([cache[name] for name in names]))
    return torch.cat(chunks, dim=1)


@dataclass(frozen=True)
class BoardProbes(Result):
    """Held-out accuracy of linear board probes at every layer, in each basis, and their control."""

    accuracy: dict[str, list[float]]
    """Per basis, per layer (0: embeddings; ``l``: after block ``l - 1``): share of correct
    square states over every square of every held-out position."""
    occupied_accuracy: dict[str, list[float]]
    """The same over occupied squares only (empty squares are readable from the moves alone)."""
    control_accuracy: dict[str, list[float]]
    """``occupied_accuracy`` of the same probe on a randomly initialised model of the same shape."""
    majority_baseline: dict[str, float]
    """Occupied squares: accuracy of always guessing the commoner colour class of each square."""
    n_train_games: int
    """Games the probes were fitted on."""
    n_test_games: int
    """Held-out games they are scored on."""
    probes: dict[str, list[LinearProbe]] | None = None
    """The fitted probes (per basis, per layer); left out of ``to_dict``."""

    def best_layer(self, basis: str = "mine_theirs") -> int:
        values = self.occupied_accuracy[basis]
        return int(np.argmax(values))

    def to_dict(self) -> dict:
        out = super().to_dict()
        out.pop("probes", None)
        return out

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig
        from matplotlib.ticker import MaxNLocator

        fig = Fig(figsize=(8.4, 4.0))
        ax = fig.add_subplot()
        styles = {"mine_theirs": "tab:blue", "black_white": "tab:orange"}
        for basis, values in self.occupied_accuracy.items():
            layers = range(len(values))
            ax.plot(layers, values, "o-", color=styles.get(basis), label=f"{basis.replace('_', ' / ')}: trained")
            ax.plot(layers, self.control_accuracy[basis], "o--", color=styles.get(basis), alpha=0.5,
                    label=f"{basis.replace('_', ' / ')}: random init")
        ax.axhline(max(self.majority_baseline.values()), color="grey", lw=0.8, ls=":", label="majority class")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("probe accuracy on occupied squares")
        ax.set_title(f"Linear board probes on Othello-GPT ({self.n_test_games} held-out games)")
        lowest = min(min(v) for v in [*self.occupied_accuracy.values(), *self.control_accuracy.values()])
        ax.set_ylim(max(0.0, min(0.4, lowest - 0.05)), 1.0)  # the random-init controls stay in view
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        return fig


def board_probes(model: HookedModel, games: Games, *, test_fraction: float = 0.2, control: HookedModel | None = None,
                 bases: tuple[str, ...] = ("mine_theirs", "black_white"), seed: int = 0) -> BoardProbes:
    """Fit a linear probe per basis and layer on the first games, score it on the rest.

    ``control``: a model of the same shape with untrained weights (default: the same
    architecture at another seed, never trained).
    """
    unknown = [b for b in bases if b not in BASES]
    if unknown:
        raise InputError(f"unknown board basis {unknown[0]!r}; choose from {', '.join(BASES)}")
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be in (0, 1); received {test_fraction}")
    n_test = max(1, round(len(games.moves) * test_fraction))
    n_train = len(games.moves) - n_test
    if n_train < 1:
        raise InputError(f"need at least 2 games to hold some out; received {len(games.moves)}")
    if control is None:
        control = _untrained_like(model, seed=seed + 1)
    acc, occ, ctrl, majority, fitted = {}, {}, {}, {}, {}
    labels = {basis: BASES[basis](games) for basis in bases}
    acts = residuals(model, games)
    for basis in bases:
        fitted[basis], acc[basis], occ[basis] = _probe_layers(acts, labels[basis], n_train, seed)
        majority[basis] = _majority(labels[basis], n_train)
    acts = residuals(control, games)
    for basis in bases:
        ctrl[basis] = _probe_layers(acts, labels[basis], n_train, seed)[2]
    return BoardProbes(accuracy=acc, occupied_accuracy=occ, control_accuracy=ctrl, majority_baseline=majority,
                       n_train_games=n_train, n_test_games=n_test, probes=fitted)


def _probe_layers(acts: Tensor, labels: Tensor, n_train: int, seed: int) -> tuple[list, list[float], list[float]]:
    probes, accuracy, occupied = [], [], []
    flat_labels = labels.flatten(0, 1)
    train_rows = torch.arange(labels.shape[0] * labels.shape[1]) < n_train * labels.shape[1]
    test_labels = flat_labels[~train_rows]
    occupied_labels = torch.where(test_labels == EMPTY_CLASS, IGNORE, test_labels)
    for layer_acts in acts:
        x = layer_acts.flatten(0, 1)
        probe = fit_linear_probe(x[train_rows], flat_labels[train_rows], n_classes=3, seed=seed)
        probes.append(probe)
        accuracy.append(probe.accuracy(x[~train_rows], test_labels))
        occupied.append(probe.accuracy(x[~train_rows], occupied_labels))
    return probes, accuracy, occupied


def _majority(labels: Tensor, n_train: int) -> float:
    """Accuracy on held-out occupied squares of each square's commoner colour class in training."""
    train, test = labels[:n_train].flatten(0, 1), labels[n_train:].flatten(0, 1)
    counts = torch.stack([(train == c).sum(0) for c in (1, 2)])  # (2, square)
    guess = counts.argmax(0) + 1
    occupied = (test == 1) | (test == 2)
    return float((test == guess)[occupied].float().mean())


def _untrained_like(model: HookedModel, *, seed: int) -> HookedModel:
    from transformers import GPT2LMHeadModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = GPT2LMHeadModel(model.hf_model.config)
    return HookedModel(hf.eval(), model.tokenizer, name=f"{model.name}-untrained")
