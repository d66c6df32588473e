"""Editing Othello-GPT's board: flip one square in the probe's basis and watch the legal moves
change as they would on the edited board (Li et al. 2022, section 4; Nanda 2023).

For a position in a game and an occupied square, the *edited board* is the real board
with that disc's colour flipped; its legal moves (for the player to move) differ from the
real board's in the cases kept here. At the chosen layers, at that position only, the
residual stream is moved along the probe's "mine − theirs" direction of that square
until the probe reads the opposite colour (its margin ``m = logit(mine) − logit(theirs)``
becomes ``−scale · m``). The model is then asked for its next move: it succeeds when its
top-N moves, N the number of legal moves on the edited board, are exactly those::

    result = intervention_experiment(run.model, probes.probes["mine_theirs"], games, layers=(2, 3, 4))
    result.success_rate, result.mean_errors          # edited, vs. the null and random-direction controls
    result.plot()

Controls: the unedited model scored against the edited board (``null_*``: how often the
edit's answer is reached without editing), and a random direction moved by the same
distance (``random_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.results import Result
from mechscope.toys.linear_probe import LinearProbe
from mechscope.toys.othello.game import Games, legal_moves
from mechscope.toys.othello.model import N_CTX, PAD, TOKEN_TO_SQUARE, move_tokens

MINE, THEIRS = 1, 2
"""Probe classes of the ``mine_theirs`` basis."""


@dataclass(frozen=True)
class Cases:
    """Where to intervene: one (game, position, square) per case, with the edited board's legal moves."""

    game: np.ndarray
    """(case,) which game."""
    pos: np.ndarray
    """(case,) after which move (0-based), i.e. the position whose prediction is edited."""
    square: np.ndarray
    """(case,) the square whose disc is flipped."""
    legal_before: np.ndarray
    """(case, 64) legal moves on the real board."""
    legal_after: np.ndarray
    """(case, 64) legal moves on the edited board."""
    board_after: np.ndarray
    """(case, 64) the edited board (BLACK 1, WHITE -1)."""


def intervention_cases(games: Games, *, n: int, seed: int, min_pos: int = 5) -> Cases:
    """``n`` random cases whose edit changes the set of legal moves and leaves at least one."""
    rng = np.random.default_rng(seed)
    picked: list[tuple[int, int, int]] = []
    boards, before, after = [], [], []
    for _ in range(200 * n):
        if len(picked) == n:
            break
        g, pos = int(rng.integers(len(games.moves))), int(rng.integers(min_pos, N_CTX))
        player = games.next_player[g, pos]
        occupied = np.nonzero(games.boards[g, pos])[0]
        if player == 0 or len(occupied) == 0:
            continue
        square = int(rng.choice(occupied))
        edited = games.boards[g, pos].copy()
        edited[square] = -edited[square]
        legal = legal_moves(edited[None], np.array([player]))[0]
        if legal.any() and (legal != games.legal[g, pos]).any():
            picked.append((g, pos, square))
            boards.append(edited), before.append(games.legal[g, pos]), after.append(legal)
    if len(picked) < n:
        raise InputError(f"found only {len(picked)} of {n} informative edits in {len(games.moves)} games; give more games")
    g, pos, sq = (np.array(x) for x in zip(*picked))
    return Cases(game=g, pos=pos, square=sq, legal_before=np.stack(before), legal_after=np.stack(after),
                 board_after=np.stack(boards))


def flip_offsets(probes: dict[int, LinearProbe], resid: dict[int, Tensor], cases: Cases, *,
                 scale: float) -> dict[int, Float[Tensor, "case d_model"]]:
    """Per layer, the vector to add at each case's position so the probe's margin becomes ``-scale * margin``."""
    out = {}
    for layer, probe in probes.items():
        w = probe.weight[:, cases.square]  # (d_model, case, cls)
        direction = (w[:, :, MINE] - w[:, :, THEIRS]).T  # (case, d_model)
        b = probe.bias[cases.square]
        margin = (resid[layer] * direction).sum(-1) + b[:, MINE] - b[:, THEIRS]
        out[layer] = -(1 + scale) * margin.unsqueeze(-1) * direction / (direction**2).sum(-1, keepdim=True)
    return out


def _hook_name(layer: int) -> str:
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"


def _run(model: HookedModel, tokens: Tensor, cases: Cases, offsets: dict[int, Tensor] | None) -> Tensor:
    """Next-move logits over squares at each case's position, with ``offsets`` added there."""
    rows, pos = torch.arange(len(cases.game)), torch.from_numpy(cases.pos)

    def add(offset: Tensor):
        def hook(resid: Tensor, hook) -> Tensor:
            resid = resid.clone()
            resid[rows, pos] += offset
            return resid
        return hook

    fwd = [(_hook_name(layer), add(offset)) for layer, offset in (offsets or {}).items()]
    with torch.no_grad(), model.hooks(fwd=fwd):
        logits = model(tokens)[rows, pos, :PAD]
    square_logits = torch.full((len(rows), 64), float("-inf"))
    square_logits[:, TOKEN_TO_SQUARE] = logits.float()
    return square_logits


def _errors(logits: Tensor, legal: np.ndarray) -> np.ndarray:
    """Per case: legal squares missing from the top-N predictions (N the number of legal squares)."""
    legal_t = torch.from_numpy(legal)
    n_legal = legal_t.sum(-1)
    ranks = logits.argsort(-1, descending=True).argsort(-1)
    top = ranks < n_legal.unsqueeze(-1)
    return (top & ~legal_t).sum(-1).numpy()


@dataclass(frozen=True)
class InterventionResult(Result):
    """How often flipping a square in the probe's basis makes the model play the edited board."""

    layers: tuple[int, ...]
    """Residual layers edited (0: embeddings; ``l``: after block ``l - 1``)."""
    scale: float
    """The probe's margin is set to ``-scale`` times its value."""
    n_cases: int
    """Edits tried (each changes the legal moves)."""
    success_rate: float
    """Share of edits after which the model's top-N moves are exactly the edited board's legal moves."""
    mean_errors: float
    """Mean count of the edited board's legal moves missing from the model's top-N after the edit."""
    null_success_rate: float
    """The same without editing (scored against the edited board)."""
    null_mean_errors: float
    """The same without editing: mean missing legal moves of the edited board."""
    random_success_rate: float
    """Editing along a random direction by the same distance."""
    random_mean_errors: float
    """Mean missing legal moves after a random-direction edit."""
    original_success_rate: float
    """The unedited model against the real board (how well it plays at these positions)."""
    example: dict
    """One case for the figure: the boards, legal moves and move probabilities before and after."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        fig = Fig(figsize=(11.5, 3.9))
        axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
        e = self.example
        for ax, board, probs, legal, title in (
            (axes[0], e["board_before"], e["probs_before"], e["legal_before"], "real board, no edit"),
            (axes[1], e["board_after"], e["probs_after"], e["legal_after"], f"edited {e['square_name']}, after edit"),
        ):
            _draw_board(ax, np.array(board), np.array(probs), np.array(legal), title)
            ax.add_patch(_square_patch(e["square"]))
        labels = ["no edit", "random\ndirection", "probe\nedit"]
        rates = [self.null_success_rate, self.random_success_rate, self.success_rate]
        errors = [self.null_mean_errors, self.random_mean_errors, self.mean_errors]
        bars = axes[2].bar(labels, rates, color=["grey", "tab:orange", "tab:blue"])
        for bar, err in zip(bars, errors):
            axes[2].text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02, f"{err:.2f} errors",
                         ha="center", fontsize=8)
        axes[2].set_ylim(0, 1.1)
        axes[2].set_ylabel("top-N = edited board's legal moves")
        where = f"layer{'s' if len(self.layers) > 1 else ''} {', '.join(map(str, self.layers))}"
        axes[2].set_title(f"{self.n_cases} edits at {where}", fontsize=10)
        fig.tight_layout()
        return fig


def _draw_board(ax, board: np.ndarray, probs: np.ndarray, legal: np.ndarray, title: str) -> None:
    ax.imshow(probs.reshape(8, 8), cmap="Greens", vmin=0, vmax=max(float(probs.max()), 1e-6))
    for s in range(64):
        r, c = divmod(s, 8)
        if board[s]:
            ax.add_patch(_disc(r, c, board[s]))
        elif legal[s]:
            ax.text(c, r, "•", ha="center", va="center", color="red", fontsize=12)
    ax.set_xticks(range(8), [str(i + 1) for i in range(8)])
    ax.set_yticks(range(8), list("ABCDEFGH"))
    ax.set_title(title, fontsize=10)


def _disc(r: int, c: int, colour: int):
    from matplotlib.patches import Circle

    return Circle((c, r), 0.35, facecolor="black" if colour == 1 else "white", edgecolor="black", lw=0.8)


def _square_patch(square: int):
    from matplotlib.patches import Rectangle

    r, c = divmod(square, 8)
    return Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=2)


def intervention_experiment(model: HookedModel, probes: list[LinearProbe], games: Games, *,
                            layers: tuple[int, ...], n_cases: int = 200, scale: float = 1.0,
                            seed: int = 0) -> InterventionResult:
    """Edit ``n_cases`` random squares at ``layers`` with the mine/theirs ``probes`` (one per layer, 0 = embeddings)."""
    if not layers or any(not 0 <= l < len(probes) for l in layers):
        raise InputError(f"layers must be non-empty, each in 0 .. {len(probes) - 1}; received {layers}")
    cases = intervention_cases(games, n=n_cases, seed=seed)
    tokens = move_tokens(games)[cases.game, :N_CTX]
    names = [_hook_name(layer) for layer in layers]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names=names)
    rows, pos = torch.arange(n_cases), torch.from_numpy(cases.pos)
    resid = {layer: cache[name][rows, pos] for layer, name in zip(layers, names)}
    offsets = flip_offsets({layer: probes[layer] for layer in layers}, resid, cases, scale=scale)
    generator = torch.Generator().manual_seed(seed)
    random = {}
    for layer, offset in offsets.items():
        direction = torch.randn(offset.shape, generator=generator)
        random[layer] = direction / direction.norm(dim=-1, keepdim=True) * offset.norm(dim=-1, keepdim=True)
    plain, edited, control = (_run(model, tokens, cases, o) for o in (None, offsets, random))
    err = {name: _errors(logits, cases.legal_after) for name, logits in
           (("edit", edited), ("null", plain), ("random", control))}
    original = _errors(plain, cases.legal_before)
    return InterventionResult(
        layers=tuple(layers), scale=scale, n_cases=n_cases,
        success_rate=float((err["edit"] == 0).mean()), mean_errors=float(err["edit"].mean()),
        null_success_rate=float((err["null"] == 0).mean()), null_mean_errors=float(err["null"].mean()),
        random_success_rate=float((err["random"] == 0).mean()), random_mean_errors=float(err["random"].mean()),
        original_success_rate=float((original == 0).mean()),
        example=_example(games, cases, plain, edited, int(np.argmax(err["edit"] == 0))),
    )


def _example(games: Games, cases: Cases, plain: Tensor, edited: Tensor, i: int) -> dict:
    from mechscope.toys.othello.game import square_name

    g, pos = int(cases.game[i]), int(cases.pos[i])
    return {"game": g, "pos": pos, "square": int(cases.square[i]), "square_name": square_name(int(cases.square[i])),
            "board_before": games.boards[g, pos].tolist(), "board_after": cases.board_after[i].tolist(),
            "legal_before": cases.legal_before[i].tolist(), "legal_after": cases.legal_after[i].tolist(),
            "probs_before": plain[i].softmax(-1).tolist(), "probs_after": edited[i].softmax(-1).tolist()}
