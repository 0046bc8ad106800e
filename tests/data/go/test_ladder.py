"""Tests of the ladder search on small hand-made positions."""

from __future__ import annotations

import numpy as np

from kgzarr.data.go import (
    BLACK,
    WHITE,
    Board,
    iter_ladders,
    loc_of,
    search_is_ladder_captured,
    search_is_ladder_captured_attacker_first_2_libs,
)


def board_from(rows: list[str]) -> Board:
    """Build a board from rows of 'X' (black), 'O' (white) and '.', row 0 at the top."""
    board = Board(len(rows[0]), len(rows))
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            if char in "XO":
                board.set_stone(loc_of(x, y, board.x_size), BLACK if char == "X" else WHITE)
    return board


# Black (2, 2) is in atari. Extending to (2, 3) leaves 2 liberties, White plays
# (2, 4), and the chain zigzags down-left into the left edge, where it dies.
LADDER = [
    ".........",
    "..O......",
    ".OXO.....",
    "...O.....",
    ".........",
    ".........",
    ".........",
    ".........",
    ".........",
]

# The same with Black (0, 3) on the ladder's path: extending to (1, 3) joins it, 3 liberties.
LADDER_BROKEN = [row if y != 3 else "X..O....." for y, row in enumerate(LADDER)]

# Black (2, 2) with 2 liberties, (3, 2) and (2, 3); White can start a ladder from either.
TWO_LIBERTIES = [
    ".........",
    "..O......",
    ".OX......",
    "...O.....",
    ".........",
    ".........",
    ".........",
    ".........",
    ".........",
]


def test_ladder_captures_atari_chain() -> None:
    board = board_from(LADDER)
    assert search_is_ladder_captured(board, loc_of(2, 2, 9), True)


def test_ladder_breaker_saves_chain() -> None:
    board = board_from(LADDER_BROKEN)
    assert not search_is_ladder_captured(board, loc_of(2, 2, 9), True)


def test_search_restores_position() -> None:
    board = board_from(LADDER)
    colors, pos_hash = board.colors.copy(), board.pos_hash
    search_is_ladder_captured(board, loc_of(2, 2, 9), True)
    assert np.array_equal(board.colors, colors)
    assert board.pos_hash == pos_hash
    assert board.get_num_liberties(loc_of(2, 2, 9)) == 1
    assert board.get_num_liberties(loc_of(3, 2, 9)) == 5


def test_escaping_chain_not_captured() -> None:
    board = board_from(LADDER)
    assert not search_is_ladder_captured(board, loc_of(1, 2, 9), True)
    assert not search_is_ladder_captured(board, loc_of(0, 0, 9), True)


def test_two_liberty_working_moves() -> None:
    board = board_from(TWO_LIBERTIES)
    captured, moves = search_is_ladder_captured_attacker_first_2_libs(board, loc_of(2, 2, 9))
    assert captured
    assert sorted(moves) == sorted([loc_of(3, 2, 9), loc_of(2, 3, 9)])


def test_two_liberty_breaker_leaves_one_move() -> None:
    """The breaker at (0, 3) spoils the ladder to the left, so only the atari at (2, 3) works."""
    board = board_from([row if y != 3 else "X..O....." for y, row in enumerate(TWO_LIBERTIES)])
    captured, moves = search_is_ladder_captured_attacker_first_2_libs(board, loc_of(2, 2, 9))
    assert captured
    assert moves == [loc_of(2, 3, 9)]


def test_iter_ladders_marks_chain() -> None:
    board = board_from(LADDER)
    laddered, working = iter_ladders(board)
    assert laddered[loc_of(2, 2, 9)]
    assert int(laddered.sum()) == 1
    assert not working.any()


def test_iter_ladders_working_moves() -> None:
    board = board_from(TWO_LIBERTIES)
    laddered, working = iter_ladders(board)
    assert laddered[loc_of(2, 2, 9)]
    assert working[BLACK, loc_of(3, 2, 9)]
    assert working[BLACK, loc_of(2, 3, 9)]
    assert int(working.sum()) == 2


def test_iter_ladders_leaves_board() -> None:
    board = board_from(TWO_LIBERTIES)
    heads = board.chain_head.copy()
    links = board.next_in_chain.copy()
    iter_ladders(board)
    assert np.array_equal(board.chain_head, heads)
    assert np.array_equal(board.next_in_chain, links)


def test_capture_escapes_ladder() -> None:
    """A defender that can capture an attacking stone in atari gains liberties and escapes."""
    rows = list(LADDER)
    rows[1] = ".XOX....."
    board = board_from(rows)
    assert board.get_num_liberties(loc_of(2, 1, 9)) == 1
    assert not search_is_ladder_captured(board, loc_of(2, 2, 9), True)
