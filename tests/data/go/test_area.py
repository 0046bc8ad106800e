"""Tests of pass-alive area (Benson's algorithm) and independent-life area on hand-made positions."""

from __future__ import annotations

import numpy as np

from kgzarr.data.go import (
    BLACK,
    EMPTY,
    WHITE,
    Board,
    calculate_area,
    calculate_independent_life_area,
    loc_of,
)


def board_from(rows: list[str]) -> Board:
    """Build a board from rows of 'X' (black), 'O' (white) and '.', row 0 at the top."""
    board = Board(len(rows[0]), len(rows))
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            if char in "XO":
                board.set_stone(loc_of(x, y, board.x_size), BLACK if char == "X" else WHITE)
    return board


def owners(board: Board, area: np.ndarray) -> list[str]:
    """Render an area as rows of 'X', 'O' and '.' for readable comparisons."""
    symbols = {EMPTY: ".", BLACK: "X", WHITE: "O"}
    return [
        "".join(symbols[int(area[loc_of(x, y, board.x_size)])] for x in range(board.x_size))
        for y in range(board.y_size)
    ]


# Black has two one-point eyes at (0, 0) and (2, 0); White has one big open region.
TWO_EYES = [
    ".X.XO",
    "XXXXO",
    "OOOOO",
    ".....",
    ".....",
]

# The same black chain with one eye only: (2, 0) is filled in.
ONE_EYE = [
    ".XXXO",
    "XXXXO",
    "OOOOO",
    ".....",
    ".....",
]

# Black's chain is in atari: its only liberty is its own eye at (0, 0).
ATARI_EYE = [
    ".XO..",
    "XXO..",
    "OOO..",
    ".....",
    ".....",
]

# Two walls with a column of dame, (2, y), between them.
DAME_COLUMN = [
    ".X.O.",
    ".X.O.",
    ".X.O.",
    ".X.O.",
    ".X.O.",
]


def test_two_eyes_pass_alive() -> None:
    board = board_from(TWO_EYES)
    area = calculate_area(board, False, False, False, False)
    assert owners(board, area) == [
        "XXXX.",
        "XXXX.",
        ".....",
        ".....",
        ".....",
    ]


def test_one_eye_not_pass_alive() -> None:
    board = board_from(ONE_EYE)
    area = calculate_area(board, False, False, False, False)
    assert not area.any()


def test_unsafe_territory_and_stones() -> None:
    board = board_from(TWO_EYES)
    area = calculate_area(board, True, True, True, False)
    assert owners(board, area) == [
        "XXXXO",
        "XXXXO",
        "OOOOO",
        "OOOOO",
        "OOOOO",
    ]


def test_safe_territory_needs_pass_alive() -> None:
    """White's open region is bordered by stones that are not pass-alive, so it is not safe."""
    board = board_from(TWO_EYES)
    area = calculate_area(board, False, True, False, False)
    assert area[loc_of(4, 4, 5)] == EMPTY
    assert area[loc_of(0, 0, 5)] == BLACK


def test_opponent_stone_in_eye_and_suicide() -> None:
    """An opponent stone inside an eye spoils the eye only when multi-stone suicide is legal."""
    # White (0, 0) sits in Black's corner eye without touching Black; (3, 0) is Black's second eye.
    board = board_from([
        "O.X.X",
        ".XXXX",
        "XXOOO",
        "OOO..",
        ".....",
    ])
    without_suicide = calculate_area(board, False, False, False, False)
    with_suicide = calculate_area(board, False, False, False, True)
    assert without_suicide[loc_of(1, 0, 5)] == BLACK
    assert without_suicide[loc_of(0, 0, 5)] == BLACK
    assert with_suicide[loc_of(1, 0, 5)] == EMPTY


def test_independent_life_keeps_whole_areas() -> None:
    board = board_from(TWO_EYES)
    area, white_minus_black = calculate_independent_life_area(board, False, False, False)
    assert owners(board, area) == [
        "XXXXO",
        "XXXXO",
        "OOOOO",
        "OOOOO",
        "OOOOO",
    ]
    assert white_minus_black == 0


def test_dame_strips_area() -> None:
    board = board_from(DAME_COLUMN)
    area, white_minus_black = calculate_independent_life_area(board, False, False, False)
    assert not area.any()
    assert white_minus_black == 0


def test_dame_keep_stones() -> None:
    board = board_from(DAME_COLUMN)
    area, _ = calculate_independent_life_area(board, False, True, False)
    assert owners(board, area) == [".X.O."] * 5


def test_dame_keep_territories() -> None:
    board = board_from(DAME_COLUMN)
    area, _ = calculate_independent_life_area(board, True, False, False)
    assert owners(board, area) == ["X...O"] * 5


def test_owner_stone_in_atari_is_seki() -> None:
    """An area holding its owner's stone in atari counts as seki even with no dame."""
    board = board_from(ATARI_EYE)
    basic = calculate_area(board, True, True, True, False)
    assert basic[loc_of(0, 0, 5)] == BLACK
    area, white_minus_black = calculate_independent_life_area(board, False, False, False)
    assert area[loc_of(0, 0, 5)] == EMPTY
    assert area[loc_of(1, 1, 5)] == EMPTY
    assert area[loc_of(4, 4, 5)] == WHITE
    assert white_minus_black == 1
