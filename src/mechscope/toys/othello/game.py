"""Othello, played many games at once: random legal games without any download.

A board is 64 squares (row-major, ``A1`` = 0 ... ``H8`` = 63; letters are rows as in
Li et al.'s notation) holding ``EMPTY``, ``BLACK`` or ``WHITE``; black moves first. The
four centre squares start occupied, so a game has at most 60 moves. A player with no
legal move passes; the game ends when neither can move. Games are sequences of moves
only, as Othello-GPT reads them (passes are not tokens; the player to move is whoever
can)::

    games = random_games(1000, seed=0)          # 1000 uniformly random legal games
    games.moves[0, :5]                          # square ids, -1 after the game ended
    games.boards[0, 4]                          # the board after move 5 (64 squares)
    games.next_player[0, 4], games.legal[0, 4]  # who moves next, and where they may

Everything is vectorised over games with numpy: along each of the 8 directions a
square's ray (at most 7 squares) is a gather, so one move of 10,000 games is a handful
of array operations. The tests check every move against an independent square-by-square
implementation of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mechscope.errors import InputError

EMPTY, BLACK, WHITE = 0, 1, -1
"""Square contents (a player is BLACK or WHITE)."""
N_SQUARES = 64
MAX_MOVES = 60
"""Squares outside the occupied centre: no game is longer."""
CENTRE = (27, 28, 35, 36)
"""D4, D5, E4, E5: occupied from the start (D4, E5 white; D5, E4 black)."""
DIRECTIONS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def square_name(square: int) -> str:
    """``A1`` .. ``H8`` (row letter, column number)."""
    return f"{'ABCDEFGH'[square // 8]}{square % 8 + 1}"


_BIT = np.uint64(1) << np.arange(N_SQUARES, dtype=np.uint64)
_NOT_FIRST_COLUMN = np.uint64(sum(1 << i for i in range(N_SQUARES) if i % 8 != 0))
_NOT_LAST_COLUMN = np.uint64(sum(1 << i for i in range(N_SQUARES) if i % 8 != 7))


def _shift(bits: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """Every set square moved one step in direction (dr, dc); squares leaving the board drop."""
    amount = dr * 8 + dc
    moved = bits << np.uint64(amount) if amount > 0 else bits >> np.uint64(-amount)
    if dc == 1:  # from the last column onto the next row's first: off the board
        moved &= _NOT_FIRST_COLUMN
    elif dc == -1:
        moved &= _NOT_LAST_COLUMN
    return moved


def to_bits(boards: np.ndarray, player: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mine, theirs) bitboards, uint64 per board, for ``player`` (one per board)."""
    sign = boards * player[:, None]
    return (np.where(sign == 1, _BIT, 0).sum(1, dtype=np.uint64),
            np.where(sign == -1, _BIT, 0).sum(1, dtype=np.uint64))


def _unpack(bits: np.ndarray) -> np.ndarray:
    """(n,) uint64 -> (n, 64) bool."""
    return (bits[:, None] & _BIT) != 0


def _legal_bits(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Empty squares that close a run of ``theirs`` discs ending at one of ``mine``, any direction."""
    empty = ~(mine | theirs)
    legal = np.zeros_like(mine)
    for dr, dc in DIRECTIONS:
        run = _shift(mine, dr, dc) & theirs
        for _ in range(5):
            run |= _shift(run, dr, dc) & theirs
        legal |= _shift(run, dr, dc) & empty
    return legal


def _flipped_bits(mine: np.ndarray, theirs: np.ndarray, move: np.ndarray) -> np.ndarray:
    """The discs a move (one bit per board) flips: each run of ``theirs`` from it closed by ``mine``."""
    flipped = np.zeros_like(mine)
    for dr, dc in DIRECTIONS:
        run = _shift(move, dr, dc) & theirs
        for _ in range(5):
            run |= _shift(run, dr, dc) & theirs
        flipped |= np.where(_shift(run, dr, dc) & mine, run, np.uint64(0))
    return flipped


def legal_moves(boards: np.ndarray, player: np.ndarray) -> np.ndarray:
    """(n, 64) bool: the squares where ``player`` (one per board) may move."""
    return _unpack(_legal_bits(*to_bits(boards, player)))


def play(boards: np.ndarray, player: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """The (n, 64) boards after ``player`` plays ``squares`` (one legal move per board)."""
    mine, theirs = to_bits(boards, player)
    move = _BIT[squares]
    flipped = _flipped_bits(mine, theirs, move)
    mine, theirs = mine | flipped | move, theirs & ~flipped
    return (_unpack(mine).astype(np.int8) - _unpack(theirs)) * player[:, None]


@dataclass(frozen=True)
class Games:
    """A batch of games and every board along them."""

    moves: np.ndarray
    """(n, 60) int64 square of each move; -1 after the game ended."""
    boards: np.ndarray
    """(n, 60, 64) int8 board after each move (the last board repeated after the end)."""
    player: np.ndarray
    """(n, 60) int8 who made each move (0 after the end)."""
    next_player: np.ndarray
    """(n, 60) int8 who moves after each move (0 when the game is over)."""
    legal: np.ndarray
    """(n, 60, 64) bool: the legal moves of ``next_player`` after each move (none when over)."""

    @property
    def lengths(self) -> np.ndarray:
        """(n,) moves in each game."""
        return (self.moves >= 0).sum(1)


def random_games(n: int, *, seed: int) -> Games:
    """``n`` games of uniformly random legal moves (each legal move equally likely), seeded."""
    if n < 1:
        raise InputError(f"n must be at least 1; received {n}")
    rng = np.random.default_rng(seed)
    black = np.full(n, _BIT[28] | _BIT[35], dtype=np.uint64)
    white = np.full(n, _BIT[27] | _BIT[36], dtype=np.uint64)
    to_move = np.full(n, BLACK, dtype=np.int8)
    moves = np.full((n, MAX_MOVES), -1, dtype=np.int64)
    out = {"boards": np.zeros((n, MAX_MOVES, N_SQUARES), dtype=np.int8),
           "player": np.zeros((n, MAX_MOVES), dtype=np.int8),
           "next_player": np.zeros((n, MAX_MOVES), dtype=np.int8),
           "legal": np.zeros((n, MAX_MOVES, N_SQUARES), dtype=bool)}
    legal = _legal_bits(black, white)
    for ply in range(MAX_MOVES):
        alive = legal != 0
        square = np.where(_unpack(legal), rng.random((n, N_SQUARES)), -1.0).argmax(1)
        move = np.where(alive, _BIT[square], np.uint64(0))
        is_black = to_move == BLACK
        mine, theirs = np.where(is_black, black, white), np.where(is_black, white, black)
        flipped = _flipped_bits(mine, theirs, move)
        mine, theirs = mine | flipped | move, theirs & ~flipped
        black, white = np.where(is_black, mine, theirs), np.where(is_black, theirs, mine)
        moves[alive, ply] = square[alive]
        out["player"][:, ply] = np.where(alive, to_move, 0)
        out["boards"][:, ply] = _unpack(black).astype(np.int8) - _unpack(white)
        # The opponent moves next if they can; else the same player again; else the game is over.
        opponent_legal = np.where(is_black, _legal_bits(white, black), _legal_bits(black, white))
        same_legal = np.where(is_black, _legal_bits(black, white), _legal_bits(white, black))
        passes = alive & (opponent_legal == 0)
        to_move = np.where(alive & ~passes, -to_move, to_move).astype(np.int8)
        legal = np.where(passes, same_legal, opponent_legal)
        legal = np.where(alive, legal, np.uint64(0))
        out["next_player"][:, ply] = np.where(legal != 0, to_move, 0)
        out["legal"][:, ply] = _unpack(legal)
    return Games(moves=moves, **out)
