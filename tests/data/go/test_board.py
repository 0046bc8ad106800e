"""Tests of the Go board: captures, suicide, ko, hashes, undo, and KataGo's own features."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from kgzarr.data.go import (
    BLACK,
    EMPTY,
    MAX_ARR_SIZE,
    NULL_LOC,
    PASS_LOC,
    WALL,
    WHITE,
    Board,
    calculate_area,
    calculate_independent_life_area,
    iter_ladders,
    loc_of,
    opp,
    xy_of,
)
from kgzarr.data.go.board import ZOBRIST_BOARD_HASH, ZOBRIST_SIZE_X_HASH, ZOBRIST_SIZE_Y_HASH


def board_from(rows: list[str]) -> Board:
    """Build a board from rows of 'X' (black), 'O' (white) and '.', row 0 at the top."""
    board = Board(len(rows[0]), len(rows))
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            if char in "XO":
                board.set_stone(loc_of(x, y, board.x_size), BLACK if char == "X" else WHITE)
    return board


def flood_chain(board: Board, loc: int) -> tuple[set[int], set[int]]:
    """Return the stones and liberties of the chain at loc, found by a plain flood fill."""
    color = board.colors[loc]
    stones, liberties, todo = {loc}, set(), [loc]
    while todo:
        cur = todo.pop()
        for d in board.adj[:4]:
            a = cur + int(d)
            if board.colors[a] == EMPTY:
                liberties.add(a)
            elif board.colors[a] == color and a not in stones:
                stones.add(a)
                todo.append(a)
    return stones, liberties


def assert_consistent(board: Board) -> None:
    """Check chain bookkeeping and the hash against values recomputed from the colors."""
    expected_hash = ZOBRIST_SIZE_X_HASH[board.x_size] ^ ZOBRIST_SIZE_Y_HASH[board.y_size]
    for loc in range(MAX_ARR_SIZE):
        color = int(board.colors[loc])
        if color not in (BLACK, WHITE):
            continue
        expected_hash ^= ZOBRIST_BOARD_HASH[loc, color]
        stones, liberties = flood_chain(board, loc)
        assert board.get_chain_size(loc) == len(stones), f"chain size at {xy_of(loc, board.x_size)}"
        assert board.get_num_liberties(loc) == len(liberties), f"liberties at {xy_of(loc, board.x_size)}"
        linked, cur = set(), loc
        for _ in range(len(stones)):
            linked.add(cur)
            cur = int(board.next_in_chain[cur])
        assert cur == loc, "chain list is not a cycle of the chain's stones"
        assert linked == stones, "chain list does not hold exactly the chain's stones"
    assert board.pos_hash == int(expected_hash)


# -- unit tests ------------------------------------------------------------------------


def test_locations_round_trip() -> None:
    assert xy_of(loc_of(3, 5, 9), 9) == (3, 5)
    assert loc_of(0, 0, 19) == 21
    assert opp(BLACK) == WHITE
    assert opp(WHITE) == BLACK


def test_new_board_walls() -> None:
    board = Board(7, 5)
    assert board.is_on_board(loc_of(6, 4, 7))
    assert not board.is_on_board(loc_of(7, 0, 7))
    assert board.colors[loc_of(0, 5, 7)] == WALL
    assert board.is_empty()
    assert board.ko_loc == NULL_LOC


def test_invalid_size_raises() -> None:
    with pytest.raises(ValueError, match="board size"):
        Board(20, 19)


def test_single_stone_capture() -> None:
    board = board_from([".X...", "XO...", ".X...", ".....", "....."])
    board.play_move_assume_legal(loc_of(2, 1, 5), BLACK)
    assert board.colors[loc_of(1, 1, 5)] == EMPTY
    assert board.num_white_captures == 1
    assert board.get_num_liberties(loc_of(2, 1, 5)) == 4


def test_chain_liberties_counted() -> None:
    board = board_from(["XX...", "X....", "....O", ".....", "....."])
    assert board.get_num_liberties(loc_of(0, 0, 5)) == 3
    assert board.get_chain_size(loc_of(1, 0, 5)) == 3
    assert board.get_num_liberties(loc_of(4, 2, 5)) == 3


def test_multi_stone_capture_no_ko() -> None:
    board = board_from([".XO..", "XXO..", "OO...", ".....", "....."])
    board.play_move_assume_legal(loc_of(0, 0, 5), WHITE)
    assert board.colors[loc_of(1, 1, 5)] == EMPTY
    assert board.num_white_captures == 0
    assert board.num_black_captures == 3
    assert board.ko_loc == NULL_LOC


def test_single_stone_suicide_illegal() -> None:
    board = board_from([".O...", "O....", ".....", ".....", "....."])
    corner = loc_of(0, 0, 5)
    assert board.is_suicide(corner, BLACK)
    assert not board.is_legal(corner, BLACK, True)
    assert not board.is_legal(corner, BLACK, False)


def test_multi_stone_suicide_rules() -> None:
    board = board_from(["X.O..", "OO...", ".....", ".....", "....."])
    point = loc_of(1, 0, 5)
    assert board.is_legal(point, BLACK, True)
    assert not board.is_legal(point, BLACK, False)
    board.play_move_assume_legal(point, BLACK)
    assert board.colors[loc_of(0, 0, 5)] == EMPTY
    assert board.colors[point] == EMPTY
    assert board.num_black_captures == 2


def test_capture_beats_suicide() -> None:
    board = board_from([".OX..", "OX...", "X....", ".....", "....."])
    corner = loc_of(0, 0, 5)
    assert not board.is_suicide(corner, BLACK)
    assert board.would_be_capture(corner, BLACK)
    assert board.is_legal(corner, BLACK, False)


def test_ko_ban_and_release() -> None:
    board = board_from([".XO..", "X.XO.", ".XO..", ".....", "....."])
    board.play_move_assume_legal(loc_of(1, 1, 5), WHITE)
    ko_point = loc_of(2, 1, 5)
    assert board.ko_loc == ko_point
    assert not board.is_legal(ko_point, BLACK, False)
    assert board.is_legal_ignoring_ko(ko_point, BLACK, False)
    board.play_move_assume_legal(loc_of(4, 4, 5), BLACK)
    assert board.ko_loc == NULL_LOC
    assert board.is_legal(ko_point, BLACK, False)


def test_pass_clears_ko() -> None:
    board = board_from([".XO..", "X.XO.", ".XO..", ".....", "....."])
    board.play_move_assume_legal(loc_of(1, 1, 5), WHITE)
    board.play_move_assume_legal(PASS_LOC, BLACK)
    assert board.ko_loc == NULL_LOC


def test_snapback_sets_no_ko() -> None:
    """Capturing one stone with a stone that joins a chain sets no ko, so the snapback is legal."""
    board = board_from(["OXO..", ".XO..", "XO...", "O....", "....."])
    board.play_move_assume_legal(loc_of(0, 1, 5), BLACK)
    assert board.colors[loc_of(0, 0, 5)] == EMPTY
    assert board.get_num_liberties(loc_of(0, 1, 5)) == 1
    assert board.ko_loc == NULL_LOC
    assert board.is_legal(loc_of(0, 0, 5), WHITE, False)
    board.play_move_assume_legal(loc_of(0, 0, 5), WHITE)
    assert board.num_black_captures == 4
    assert board.ko_loc == NULL_LOC


def test_ko_capture_location() -> None:
    board = board_from([".XO..", "X.XO.", ".XO..", ".....", "....."])
    assert board.get_ko_capture_loc(loc_of(1, 1, 5), WHITE) == loc_of(2, 1, 5)
    assert board.would_be_ko_capture(loc_of(1, 1, 5), WHITE)
    assert not board.would_be_ko_capture(loc_of(4, 4, 5), WHITE)


def test_set_stone_replaces_and_removes() -> None:
    board = board_from(["XXX..", ".....", ".....", ".....", "....."])
    board.set_stone(loc_of(1, 0, 5), EMPTY)
    assert board.get_chain_size(loc_of(0, 0, 5)) == 1
    assert board.get_chain_size(loc_of(2, 0, 5)) == 1
    board.set_stone(loc_of(2, 0, 5), WHITE)
    assert board.colors[loc_of(2, 0, 5)] == WHITE
    assert_consistent(board)


def test_set_stone_without_liberties_skipped() -> None:
    board = board_from([".O...", "O....", ".....", ".....", "....."])
    assert board.set_stone(loc_of(0, 0, 5), BLACK)
    assert board.colors[loc_of(0, 0, 5)] == EMPTY
    assert not board.set_stone(loc_of(5, 0, 5), BLACK)


def test_hash_after_move_predicts() -> None:
    board = board_from([".XO..", "X.XO.", ".XO..", ".....", "....."])
    predicted = board.get_pos_hash_after_move(loc_of(1, 1, 5), WHITE)
    board.play_move_assume_legal(loc_of(1, 1, 5), WHITE)
    assert predicted == board.pos_hash


def test_hash_ignores_player_and_ko() -> None:
    board = board_from([".XO..", "X.XO.", ".XO..", ".....", "....."])
    before = board.pos_hash
    board.play_move_assume_legal(PASS_LOC, BLACK)
    assert board.pos_hash == before
    assert board.get_sit_hash_with_simple_ko(BLACK) != board.get_sit_hash_with_simple_ko(WHITE)


def test_copy_is_independent() -> None:
    board = board_from(["X....", ".....", ".....", ".....", "....."])
    clone = board.copy()
    clone.play_move_assume_legal(loc_of(1, 0, 5), WHITE)
    assert board.colors[loc_of(1, 0, 5)] == EMPTY
    assert board.get_num_liberties(loc_of(0, 0, 5)) == 2


def random_game(board: Board, rng: np.random.Generator, num_moves: int, suicide: bool) -> list:
    """Play random legal moves, checking the board after each; return the move records."""
    records = []
    pla = BLACK
    points = [loc for loc in range(MAX_ARR_SIZE) if board.colors[loc] != WALL]
    for _ in range(num_moves):
        legal = [loc for loc in points if board.is_legal(loc, pla, suicide)]
        loc = int(rng.choice(legal)) if legal and rng.random() > 0.03 else PASS_LOC
        predicted = board.get_pos_hash_after_move(loc, pla)
        records.append(board.play_move_recorded(loc, pla))
        assert board.pos_hash == predicted
        assert_consistent(board)
        pla = opp(pla)
    return records


@pytest.mark.parametrize("suicide", [False, True])
def test_random_games_consistent(suicide: bool) -> None:
    """Chains, liberties and hashes stay right through captures, suicides and ko in long games."""
    rng = np.random.default_rng(7)
    for size in (5, 9):
        random_game(Board(size, size), rng, 150, suicide)


def test_undo_restores_position() -> None:
    rng = np.random.default_rng(11)
    board = Board(7, 7)
    snapshots, records = [], []
    pla = BLACK
    for _ in range(120):
        snapshots.append((board.colors.copy(), board.pos_hash, board.ko_loc, board.num_black_captures))
        legal = [loc for loc in range(MAX_ARR_SIZE) if board.colors[loc] == EMPTY and board.is_legal(loc, pla, True)]
        records.append(board.play_move_recorded(int(rng.choice(legal)) if legal else PASS_LOC, pla))
        pla = opp(pla)
    for (colors, pos_hash, ko_loc, black_captures), record in zip(reversed(snapshots), reversed(records)):
        board.undo(record)
        assert np.array_equal(board.colors, colors)
        assert board.pos_hash == pos_hash
        assert board.ko_loc == ko_loc
        assert board.num_black_captures == black_captures
        assert_consistent(board)


# -- KataGo's own features -------------------------------------------------------------

PLANES = (1, 2, 3, 4, 5, 14, 15, 16, 17, 18, 19)


def sgf_loc(xy: str, x_size: int) -> int:
    return PASS_LOC if xy in ("", "pass", "tt") else loc_of(ord(xy[0]) - 97, ord(xy[1]) - 97, x_size)


def setup_board(size: int, sgf_head: str) -> Board:
    """Place the AB/AW setup stones that come before the first move."""
    board = Board(size, size)
    for prop, color in (("AB", BLACK), ("AW", WHITE)):
        for match in re.finditer(prop + r"((?:\[[a-z]{2}\]\s*)+)", sgf_head):
            for xy in re.findall(r"\[([a-z]{2})\]", match.group(1)):
                board.set_stone(sgf_loc(xy, size), color)
    return board


def compute_planes(board: Board, history: list[Board], move_index: int, pla: int, rules: str) -> dict[int, np.ndarray]:
    """Compute planes 1-5 and 14-19 as fillRowV7 does for a phase-0 position.

    Planes 15 and 16 use the boards 1 and 2 moves back. In these games the moves
    alternate, so a phase-0 row after move k has min(k, 2) such boards of history.
    """
    size = board.x_size
    idx = np.array([[loc_of(x, y, size) for x in range(size)] for y in range(size)])
    other = opp(pla)
    colors = board.colors[idx]
    libs = np.zeros_like(idx)
    for (y, x), loc in np.ndenumerate(idx):
        if colors[y, x] in (BLACK, WHITE):
            libs[y, x] = board.get_num_liberties(int(loc))

    laddered, working = iter_ladders(board)
    prev = history[-2] if move_index >= 1 else board
    prev_prev = history[-3] if move_index >= 2 else prev

    suicide = "sui1" in rules
    if "scoreAREA" in rules and "taxNONE" in rules:
        area = calculate_area(board, True, True, True, suicide)
    elif "scoreAREA" in rules:
        area, _ = calculate_independent_life_area(board, False, True, suicide)
    else:
        area = np.zeros(MAX_ARR_SIZE, dtype=np.int8)

    planes = {1: colors == pla, 2: colors == other, 3: libs == 1, 4: libs == 2, 5: libs == 3}
    planes[14] = laddered[idx]
    planes[15] = iter_ladders(prev)[0][idx]
    planes[16] = iter_ladders(prev_prev)[0][idx]
    planes[17] = working[other][idx]
    planes[18] = area[idx] == pla
    planes[19] = area[idx] == other
    return {p: plane.astype(np.uint8) for p, plane in planes.items()}


@dataclass
class Comparison:
    rows: int = 0
    mismatches: dict[int, list] = field(default_factory=lambda: {p: [] for p in PLANES})
    nonzero: dict[int, int] = field(default_factory=lambda: {p: 0 for p in PLANES})


def replay_and_compare(size, head, rows, moves, rules, reference, comparison) -> None:
    """Replay one game, comparing every phase-0 row with KataGo's packed planes."""
    board = setup_board(size, head)
    history = [board.copy()]
    for i, row in enumerate(rows):
        pla = BLACK if row["player_to_move"] == "B" else WHITE
        if row["encore_phase"] == "0":
            expected = reference[row["file"]][int(row["row"])]
            mine = compute_planes(board, history, i, pla, rules)
            comparison.rows += 1
            for p in PLANES:
                comparison.nonzero[p] += bool(expected[p].any())
                if not np.array_equal(mine[p], expected[p]):
                    comparison.mismatches[p].append((row["game_index"], i))
        loc = sgf_loc(moves[i], size)
        assert board.is_legal(loc, pla, "sui1" in rules), f"move {i} of game {row['game_index']}"
        board.play_move_assume_legal(loc, pla)
        history.append(board.copy())


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_planes(path: Path, size: int) -> np.ndarray:
    with np.load(path) as arrays:
        packed = arrays["binaryInputNCHWPacked"]
    return np.unpackbits(packed, axis=2)[:, :, : size * size].reshape(len(packed), 22, size, size)


@pytest.fixture(scope="module")
def sgf7_comparison(shared_data: Path) -> Comparison:
    folder = shared_data / "sgf_features"
    games = (shared_data / "sgf7" / "AFD4C8C7C06DFC0C.sgfs").read_text().splitlines()
    rules = {int(g["game_index"]): g["rules"] for g in read_csv(folder / "sgf7-all-games.csv")}
    reference = {f.name: load_planes(f, 7) for f in sorted(folder.glob("sgf7-all-0*.npz"))}
    rows_by_game: dict[int, list] = {}
    for row in read_csv(folder / "sgf7-all.csv"):
        rows_by_game.setdefault(int(row["game_index"]), []).append(row)

    comparison = Comparison()
    for game, rows in sorted(rows_by_game.items()):
        sgf = games[game]
        head = re.split(r";[BW]\[", sgf)[0]
        moves = [xy for _, xy in re.findall(r";([BW])\[([a-z]{0,2})\]", sgf)]
        replay_and_compare(7, head, rows, moves, rules[game], reference, comparison)
    return comparison


@pytest.fixture(scope="module")
def sgf_files_comparison(shared_data: Path) -> Comparison:
    folder = shared_data / "sgf_features"
    lines = {(g["sgf_file"], g["game_index"]): g for g in read_csv(folder / "sgf-tests-games.csv")}
    rows_by_line: dict[tuple, list] = {}
    for row in read_csv(folder / "sgf-tests.csv"):
        if not row["file"].endswith("-L19.npz"):
            rows_by_line.setdefault((row["sgf_file"], row["game_index"]), []).append(row)

    comparison = Comparison()
    for key, rows in rows_by_line.items():
        size = int(lines[key]["board_size"].split("x")[0])
        reference = {rows[0]["file"]: load_planes(folder / rows[0]["file"], size)}
        head = re.split(r";[BW]\[", (folder / "sgf" / key[0]).read_text())[0]
        moves = [row["played_move"] for row in rows]
        replay_and_compare(size, head, rows, moves, lines[key]["rules"], reference, comparison)
    return comparison


@pytest.mark.shared
@pytest.mark.parametrize("plane", PLANES)
def test_sgf7_plane_matches_katago(sgf7_comparison: Comparison, plane: int) -> None:
    """Every phase-0 row of the 200 7x7 self-play games equals KataGo's C++ planes."""
    assert sgf7_comparison.rows == 5794
    assert sgf7_comparison.mismatches[plane] == []


@pytest.mark.shared
def test_sgf7_planes_exercised(sgf7_comparison: Comparison) -> None:
    """The reference rows contain ladders, plane-17 moves and area, so a match means something."""
    for plane in (3, 14, 15, 16, 17, 18, 19):
        assert sgf7_comparison.nonzero[plane] > 100, f"plane {plane}"


@pytest.mark.shared
@pytest.mark.parametrize("plane", PLANES)
def test_sgf_files_plane_matches_katago(sgf_files_comparison: Comparison, plane: int) -> None:
    """The 9x9 and 19x19 test SGFs of KataGo's repository give KataGo's planes."""
    assert sgf_files_comparison.rows == 261
    assert sgf_files_comparison.mismatches[plane] == []
