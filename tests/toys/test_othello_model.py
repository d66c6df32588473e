"""Othello-GPT's tokens, loss and legal-move accuracy; board probes on a planted
representation; interventions that move the probe's margin where they should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mechscope.toys.linear_probe import IGNORE, LinearProbe, fit_linear_probe
from mechscope.toys.othello.game import random_games
from mechscope.toys.othello.intervene import MINE, THEIRS, flip_offsets, intervention_cases
from mechscope.toys.othello.model import (
    N_CTX,
    PAD,
    PLAYABLE,
    TOKEN_TO_SQUARE,
    OthelloConfig,
    expected_next_move_loss,
    legal_move_accuracy,
    move_tokens,
    next_move_loss,
    othello_model,
    train_othello,
)
from mechscope.toys.othello.probe import black_white, mine_theirs

TINY = OthelloConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, steps=2, batch_size=4, warmup=1)


def test_tokens_are_the_sixty_playable_squares():
    games = random_games(5, seed=0)
    tokens = move_tokens(games)
    assert tokens.shape == (5, 60) and len(PLAYABLE) == 60 and PAD == 60
    played = games.moves >= 0
    assert torch.equal(TOKEN_TO_SQUARE[tokens[torch.from_numpy(played)]], torch.from_numpy(games.moves[played]))
    assert (tokens[torch.from_numpy(~played)] == PAD).all()


def test_expected_loss_is_the_mean_of_the_loss_over_legal_next_moves():
    model = othello_model(TINY)
    games = random_games(3, seed=1)
    tokens = move_tokens(games)
    with torch.no_grad():
        expected = expected_next_move_loss(model, tokens, games)
        logits = model.hf_model(input_ids=tokens[:, :N_CTX]).logits[..., :PAD].log_softmax(-1)
    per_position = []
    for g in range(3):
        for pos in range(N_CTX):
            legal = [PLAYABLE.index(s) for s in np.nonzero(games.legal[g, pos])[0]]
            if legal:
                per_position.append(-float(logits[g, pos, legal].mean()))
    assert abs(float(expected) - np.mean(per_position)) < 1e-5
    assert next_move_loss(model, tokens).item() > 0  # the sampled-move loss runs too


class _Oracle:
    """Stands in for a model: puts its top logit on a legal move (or, ``wrong``, on an illegal one)."""

    def __init__(self, games, wrong: bool = False) -> None:
        self.games, self.wrong = games, wrong
        self.hf_model = self

    def __call__(self, input_ids, use_cache=False):
        n = input_ids.shape[0]
        logits = torch.zeros(n, N_CTX, PAD + 1)
        legal = torch.from_numpy(self.games.legal[self._rows(input_ids), :N_CTX][..., list(PLAYABLE)])
        target = ~legal if self.wrong else legal
        logits[..., :PAD] = target.float() * 5 + torch.rand(n, N_CTX, PAD)
        return type("Out", (), {"logits": logits})()

    def _rows(self, input_ids):
        tokens = move_tokens(self.games)[:, :N_CTX]
        return [int((tokens == row).all(-1).nonzero()[0]) for row in input_ids]


def test_legal_move_accuracy_of_an_oracle_and_of_its_opposite():
    games = random_games(6, seed=2)
    assert legal_move_accuracy(_Oracle(games), games, batch_size=4) == 1.0
    assert legal_move_accuracy(_Oracle(games, wrong=True), games, batch_size=4) == 0.0


def test_mine_theirs_is_relative_to_the_player_to_move():
    games = random_games(4, seed=3)
    mt, bw = mine_theirs(games), black_white(games)
    g, pos = 0, 10
    player = games.next_player[g, pos]
    for square in range(64):
        colour = games.boards[g, pos, square]
        assert mt[g, pos, square] == (0 if colour == 0 else 1 if colour == player else 2)
        assert bw[g, pos, square] == (0 if colour == 0 else 1 if colour == 1 else 2)
    over = games.next_player[:, :N_CTX] == 0
    assert (mt[torch.from_numpy(over)] == IGNORE).all()


def test_probe_reads_a_planted_board_and_not_shuffled_labels():
    games = random_games(120, seed=4)
    labels = mine_theirs(games).flatten(0, 1)
    keep = (labels != IGNORE).all(-1)
    labels = labels[keep]
    generator = torch.Generator().manual_seed(0)
    embedding = torch.randn(64, 3, 256, generator=generator)  # each square's state writes its own direction
    onehot = torch.nn.functional.one_hot(labels, 3).float()
    acts = torch.einsum("nsc,scd->nd", onehot, embedding) + 0.5 * torch.randn(len(labels), 256, generator=generator)
    n_train = len(acts) * 4 // 5
    probe = fit_linear_probe(acts[:n_train], labels[:n_train], n_classes=3, epochs=20)
    assert probe.accuracy(acts[n_train:], labels[n_train:]) > 0.95
    shuffled = labels[torch.randperm(len(labels), generator=generator)]
    control = fit_linear_probe(acts[:n_train], shuffled[:n_train], n_classes=3, epochs=20)
    guess = torch.stack([(shuffled[:n_train] == c).sum(0) for c in range(3)]).argmax(0)  # per-square majority
    majority = float((shuffled[n_train:] == guess).float().mean())
    assert control.accuracy(acts[n_train:], shuffled[n_train:]) < majority + 0.03


def test_flip_offsets_set_the_probe_margin_to_minus_scale_times_it():
    games = random_games(30, seed=5)
    cases = intervention_cases(games, n=10, seed=0)
    generator = torch.Generator().manual_seed(1)
    probe = LinearProbe(weight=torch.randn(16, 64, 3, generator=generator), bias=torch.randn(64, 3, generator=generator))
    resid = torch.randn(10, 16, generator=generator)
    offset = flip_offsets({2: probe}, {2: resid}, cases, scale=1.5)[2]

    def margin(x):
        logits = probe.logits(x)[torch.arange(10), torch.from_numpy(cases.square)]
        return logits[:, MINE] - logits[:, THEIRS]

    assert torch.allclose(margin(resid + offset), -1.5 * margin(resid), atol=1e-4)


def test_intervention_cases_change_the_legal_moves():
    games = random_games(30, seed=6)
    cases = intervention_cases(games, n=20, seed=1)
    assert (cases.legal_after != cases.legal_before).any(-1).all() and cases.legal_after.any(-1).all()
    for i in range(20):
        before = games.boards[cases.game[i], cases.pos[i]]
        changed = np.nonzero(before != cases.board_after[i])[0]
        assert changed.tolist() == [cases.square[i]] and before[cases.square[i]] == -cases.board_after[i][cases.square[i]]


def test_training_two_steps_and_resuming(tmp_path):
    first = train_othello(TINY, checkpoint_dir=tmp_path, progress=False, eval_every=1)
    again = train_othello(TINY, checkpoint_dir=tmp_path, progress=False)
    assert again.resumed_from == 2 and len(first.history["loss"]) == 2 and 0 <= first.history["legal_accuracy"][-1] <= 1


@pytest.mark.slow
def test_quick_model_learns_some_of_the_rules():
    run = train_othello(OthelloConfig.quick(), checkpoint_dir=None, progress=False, eval_every=100)
    assert run.history["legal_accuracy"][-1] > 0.5  # an untrained model: about 0.15
