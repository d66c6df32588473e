"""Othello-GPT (Li et al. 2022): a GPT trained only on sequences of legal moves.

The model never sees a board. It reads the moves of random legal games (one token per
square played) and predicts the next move; to do that well it must know which squares
are legal, and it learns a board to know it (:mod:`mechscope.toys.othello.probe`)::

    from mechscope.toys.othello import OthelloConfig, train_othello, legal_move_accuracy

    run = train_othello(OthelloConfig())            # cached: later runs load it
    legal_move_accuracy(run.model, random_games(500, seed=10**6))   # share of top-1 predictions that are legal

Li et al. trained 8 layers of width 512 on 20 million games with 8 GPUs. This one is a
smaller unmodified GPT-2 (default 4 layers, width 128: about an hour on one CPU thread) trained on CPU on fresh random
games every step (batch ``i`` is ``random_games(batch_size, seed=seed * 1_000_003 + i)``:
no game is seen twice, nothing is downloaded, and training resumes exactly), on the
expected cross-entropy of the next move (:func:`expected_next_move_loss`).

Tokens: ``0 .. 59`` are the 60 squares outside the centre in board order (``A1`` .. ``H8``),
``60`` pads finished games. The model reads moves ``1 .. 59`` and predicts ``2 .. 60``;
the loss skips padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.toys.gpt2 import ToyShape, toy_gpt2, trainable, word_tokenizer
from mechscope.toys.othello.game import CENTRE, MAX_MOVES, N_SQUARES, Games, random_games, square_name
from mechscope.toys.training import TrainedToy, checkpoint_directory, resumable_training, torch_threads

PLAYABLE = tuple(s for s in range(N_SQUARES) if s not in CENTRE)
"""The 60 squares a move can be on, in token order."""
PAD = len(PLAYABLE)
"""Token id after a game ended."""
N_CTX = MAX_MOVES - 1
"""Moves the model reads (it predicts the next of each)."""
_SQUARE_TO_TOKEN = np.full(N_SQUARES + 1, PAD, dtype=np.int64)
_SQUARE_TO_TOKEN[list(PLAYABLE)] = np.arange(len(PLAYABLE))
TOKEN_TO_SQUARE = torch.tensor(PLAYABLE, dtype=torch.long)
"""Square of each move token (index with a token id below ``PAD``)."""


@dataclass(frozen=True, kw_only=True)
class OthelloConfig:
    """Othello-GPT's shape and training."""

    n_layers: int = 4
    """Transformer blocks."""
    d_model: int = 128
    """Residual width."""
    n_heads: int = 8
    """Heads per block."""
    d_mlp: int = 512
    """MLP width."""
    batch_size: int = 32
    """Fresh random games per step."""
    steps: int = 14000
    """AdamW steps (more continue a cached run: see ``decay_steps``)."""
    decay_steps: int = 14000
    """Steps over which the learning rate decays (cosine, to a tenth); it stays there after."""
    lr: float = 3e-3
    """Peak learning rate (linear warm-up over ``warmup`` steps, then cosine decay to a tenth)."""
    warmup: int = 200
    """Warm-up steps."""
    weight_decay: float = 0.01
    """AdamW's weight decay."""
    checkpoint_every: int = 500
    """Steps between checkpoints."""
    seed: int = 0
    """Seeds the weights and the games."""
    threads: int | None = 1
    """torch threads while training (None: every core)."""

    EXTENDABLE = ("steps",)  # the schedule ends at decay_steps: more steps continue a cached run

    def __post_init__(self) -> None:
        for field in ("n_layers", "d_model", "n_heads", "d_mlp", "batch_size", "steps", "decay_steps",
                      "checkpoint_every"):
            if getattr(self, field) < 1:
                raise InputError(f"OthelloConfig.{field} must be at least 1; received {getattr(self, field)}")
        if self.d_model % self.n_heads:
            raise InputError(f"OthelloConfig.d_model must be a multiple of n_heads={self.n_heads}; received {self.d_model}")
        if not self.lr > 0 or self.warmup < 0 or self.weight_decay < 0:
            raise InputError("OthelloConfig.lr must be > 0, warmup and weight_decay >= 0; received "
                             f"{self.lr}, {self.warmup}, {self.weight_decay}")

    @classmethod
    def quick(cls, **overrides) -> OthelloConfig:
        """Two small layers and a few hundred steps: learns the rules only partly, in about a minute."""
        return cls(**{"n_layers": 2, "d_model": 64, "n_heads": 4, "d_mlp": 256, "steps": 300, "decay_steps": 300,
                      "warmup": 30,
                      "batch_size": 32, "lr": 3e-3, **overrides})

    @property
    def shape(self) -> ToyShape:
        return ToyShape(d_vocab=PAD + 1, n_ctx=N_CTX, d_model=self.d_model, n_layers=self.n_layers,
                        n_heads=self.n_heads, d_mlp=self.d_mlp, activation="gelu_new", layer_norm=True)

    def lr_at(self, step: int) -> float:
        """The learning rate of ``step``: linear warm-up, then cosine decay to ``lr / 10``."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(self.decay_steps - self.warmup, 1)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0))))


def move_tokens(games: Games) -> Int[Tensor, "game 60"]:
    """Each game's moves as token ids (``PAD`` after the end)."""
    return torch.from_numpy(_SQUARE_TO_TOKEN[np.where(games.moves >= 0, games.moves, N_SQUARES)])


def othello_model(config: OthelloConfig, *, seed: int | None = None) -> HookedModel:
    """A freshly initialised GPT-2 for move sequences (``seed`` defaults to the config's)."""
    words = [square_name(s) for s in PLAYABLE] + ["pass"]
    hf = toy_gpt2(config.shape, seed=config.seed if seed is None else seed)
    return HookedModel(hf, word_tokenizer(words, unk="pass"), name="othello-gpt")


def next_move_loss(model: HookedModel, tokens: Int[Tensor, "game 60"]) -> Tensor:
    """Mean cross-entropy of the move actually played next, padding skipped."""
    logits = model.hf_model(input_ids=tokens[:, :N_CTX], use_cache=False).logits
    target = tokens[:, 1:]
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD)


def expected_next_move_loss(model: HookedModel, tokens: Int[Tensor, "game 60"], games: Games) -> Tensor:
    """:func:`next_move_loss` in expectation over the generator's choice of the next move.

    The games choose each move uniformly among the legal ones, so the expected
    cross-entropy of the next move is the cross-entropy against the uniform distribution
    over the legal moves: the same objective with the same minimiser, without the noise
    of one sampled move per position (training converges several times faster on CPU).
    The model still reads nothing but moves.
    """
    logits = model.hf_model(input_ids=tokens[:, :N_CTX], use_cache=False).logits[..., :PAD]
    legal = torch.from_numpy(games.legal[:, :N_CTX][..., list(PLAYABLE)]).float()  # (game, pos, token)
    has_next = legal.sum(-1) > 0
    target = legal[has_next] / legal[has_next].sum(-1, keepdim=True)
    return -(target * logits[has_next].log_softmax(-1)).sum(-1).mean()


@dataclass(frozen=True)
class OthelloTraining(TrainedToy):
    """A trained Othello-GPT. ``history``: ``loss`` and ``lr`` per step; ``eval_step``,
    ``eval_loss`` and ``legal_accuracy`` (held-out games) per evaluation."""


EVAL_SEED = 10**9
"""Seed of the held-out games (training games use seeds below ``EVAL_SEED``)."""


def train_othello(config: OthelloConfig = OthelloConfig(), *, checkpoint_dir: str | Path | None = "cache",
                  eval_every: int = 500, progress: bool = True) -> OthelloTraining:
    """Train (or load from the cache, or resume) Othello-GPT on fresh random games with AdamW.

    ``checkpoint_dir``: ``"cache"`` (one directory per configuration under mechscope's
    cache dir), a path, or None (nothing kept).
    """
    directory = checkpoint_directory("othello", config, checkpoint_dir)
    model = othello_model(config)
    optimizer = torch.optim.AdamW(trainable(model.hf_model), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.95))
    held_out = random_games(256, seed=EVAL_SEED)
    held_tokens = move_tokens(held_out)

    def step_fn(step: int) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        games = random_games(config.batch_size, seed=config.seed * 1_000_003 + step)
        loss = expected_next_move_loss(model, move_tokens(games), games)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable(model.hf_model), 1.0)
        optimizer.step()
        return {"loss": loss.item(), "lr": config.lr_at(step)}

    def eval_fn(step: int) -> dict[str, float]:
        return {"eval_loss": expected_next_move_loss(model, held_tokens, held_out).item(),
                "legal_accuracy": legal_move_accuracy(model, held_out)}

    with torch_threads(config.threads):
        state = resumable_training(
            model=model.hf_model, optimizer=optimizer, config=config, steps=config.steps, step_fn=step_fn,
            eval_fn=eval_fn, eval_every=eval_every, directory=directory, checkpoint_every=config.checkpoint_every,
            desc="othello-gpt", progress=progress)
    return OthelloTraining(model=model, history=state.history, config=config, directory=directory,
                           resumed_from=state.resumed_from)


def legal_move_accuracy(model: HookedModel, games: Games, *, batch_size: int = 256) -> float:
    """Share of top-1 next-move predictions that are legal, over every position with a next move."""
    tokens = move_tokens(games)
    hits = total = 0
    with torch.no_grad():
        for first in range(0, len(tokens), batch_size):
            chunk = slice(first, first + batch_size)
            logits = model.hf_model(input_ids=tokens[chunk, :N_CTX], use_cache=False).logits
            predicted = TOKEN_TO_SQUARE[logits[..., :PAD].argmax(-1)]  # (game, pos) square
            legal = torch.from_numpy(games.legal[chunk, :N_CTX])
            has_next = legal.any(-1)
            hit = legal.gather(-1, predicted.unsqueeze(-1)).squeeze(-1)
            hits += int(hit[has_next].sum())
            total += int(has_next.sum())
    return hits / max(total, 1)
