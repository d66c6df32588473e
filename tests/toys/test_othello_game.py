"""The Othello game generator, checked move by move against an independent implementation
of the rules written square by square (no bitboards, no vectorisation)."""

from __future__ import annotations

import numpy as np
import pytest

from mechscope.errors import InputError
from mechscope.toys.othello.game import BLACK, EMPTY, WHITE, legal_moves, play, random_games, square_name


def _flips(board: list[int], player: int, square: int) -> list[int]:
    """The discs ``player`` flips by playing ``square`` (empty list: not a legal move)."""
    if board[square] != EMPTY:
        return []
    row, col = divmod(square, 8)
    flipped = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            run, r, c = [], row + dr, col + dc
            while 0 <= r < 8 and 0 <= c < 8 and board[r * 8 + c] == -player:
                run.append(r * 8 + c)
                r, c = r + dr, c + dc
            if run and 0 <= r < 8 and 0 <= c < 8 and board[r * 8 + c] == player:
                flipped += run
    return flipped


def _legal(board: list[int], player: int) -> set[int]:
    return {s for s in range(64) if _flips(board, player, s)}


def _replay(moves: list[int]):
    """Yield (board after the move, who moved, who moves next, their legal moves), by the rules."""
    board = [EMPTY] * 64
    board[27] = board[36] = WHITE
    board[28] = board[35] = BLACK
    player = BLACK
    for square in moves:
        assert square in _legal(board, player), f"{square_name(square)} is not legal for {player}"
        for s in _flips(board, player, square):
            board[s] = player
        board[square] = player
        moved = player
        if _legal(board, -player):
            player = -player
        elif not _legal(board, player):
            player = 0  # neither can move: over
        yield list(board), moved, player, _legal(board, player) if player else set()


def test_every_generated_move_is_legal_by_the_independent_rules():
    games = random_games(120, seed=3)
    for g in range(120):
        moves = [int(m) for m in games.moves[g] if m >= 0]
        assert (games.moves[g, len(moves):] == -1).all()
        steps = list(_replay(moves))
        for ply, (board, moved, next_player, legal) in enumerate(steps):
            assert games.boards[g, ply].tolist() == board
            assert games.player[g, ply] == moved
            assert games.next_player[g, ply] == next_player
            assert set(np.nonzero(games.legal[g, ply])[0].tolist()) == legal
        assert steps[-1][2] == 0 or len(moves) == 60  # a game stops only when nobody can move


def test_games_include_passes_and_early_ends():
    games = random_games(3000, seed=0)
    passes = (games.player[:, 1:] == games.player[:, :-1]) & (games.player[:, 1:] != 0)
    assert passes.any()  # a player with no legal move passes: the same player moves twice
    assert (games.lengths < 60).any() and (games.lengths == 60).mean() > 0.5
    for g in np.nonzero(passes.any(1))[0][:20]:  # checked against the rules like every other game
        list(_replay([int(m) for m in games.moves[g] if m >= 0]))


def test_random_choice_is_uniform_over_the_legal_moves():
    games = random_games(4000, seed=1)
    first = np.bincount(games.moves[:, 0], minlength=64)
    assert set(np.nonzero(first)[0]) == {19, 26, 37, 44}  # black's four openings
    assert all(abs(first[s] / 4000 - 0.25) < 0.03 for s in (19, 26, 37, 44))


def test_generator_is_seeded():
    a, b, c = random_games(50, seed=7), random_games(50, seed=7), random_games(50, seed=8)
    assert np.array_equal(a.moves, b.moves) and not np.array_equal(a.moves, c.moves)


def test_legal_moves_and_play_agree_with_the_rules_on_random_positions():
    games = random_games(40, seed=5)
    rng = np.random.default_rng(0)
    boards = games.boards[np.arange(40), rng.integers(0, 50, 40)]
    player = np.where(rng.random(40) < 0.5, BLACK, WHITE).astype(np.int8)
    legal = legal_moves(boards, player)
    for g in range(40):
        expected = _legal(boards[g].tolist(), int(player[g]))
        assert set(np.nonzero(legal[g])[0].tolist()) == expected
        for square in list(expected)[:3]:
            after = play(boards[g : g + 1], player[g : g + 1], np.array([square]))[0].tolist()
            board = boards[g].tolist()
            for s in _flips(board, int(player[g]), square):
                board[s] = int(player[g])
            board[square] = int(player[g])
            assert after == board


def test_bad_count_is_refused():
    with pytest.raises(InputError, match="n must be at least 1"):
        random_games(0, seed=0)
