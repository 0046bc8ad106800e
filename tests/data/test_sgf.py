"""SGF parsing: tokens, variations, setup merging, first player and .sgfs files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kgzarr.data.sgf import (
    BLACK,
    EMPTY,
    WHITE,
    iter_lines_of_play,
    parse_root_comment,
    parse_sgf_collection,
    read_sgf_games,
)


def _games(tmp_path: Path, text: str, name: str = "game.sgf") -> list:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return list(read_sgf_games(path))


def test_escapes_and_line_breaks() -> None:
    (tree,) = parse_sgf_collection("(;C[a\\]b\\\\c\r\n\r\nd\\\ne\tf])")
    assert tree.nodes[0].first("C") == "a]b\\c\nde f"


def test_repeated_property_accumulates() -> None:
    (tree,) = parse_sgf_collection("(;AP[GNU Go:3.8]  AP[foxwq];B[aa])")
    assert tree.nodes[0].properties["AP"] == ["GNU Go:3.8", "foxwq"]


def test_whitespace_between_tokens() -> None:
    (tree,) = parse_sgf_collection("\ufeff ( ; SZ [9] \n ; B [cc] ) ")
    assert tree.nodes[0].first("SZ") == "9"
    assert tree.nodes[1].first("B") == "cc"


def test_variations_depth_first() -> None:
    (tree,) = parse_sgf_collection("(;SZ[5];B[aa](;W[bb](;B[cc])(;B[dd]))(;W[ee]))")
    lines = [[node.first("B") or node.first("W") for node in line[1:]] for line in iter_lines_of_play(tree)]
    assert lines == [["aa", "bb", "cc"], ["aa", "bb", "dd"], ["aa", "ee"]]


def test_setup_merged_into_position(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[9];AB[aa][bb:cc]AW[ee];AE[bb];W[ff])")
    placed = {(x, y): color for node in game.setup for x, y, color in node}
    assert placed[(0, 0)] == BLACK
    assert placed[(4, 4)] == WHITE
    assert placed[(1, 1)] == EMPTY
    assert game.num_setup_stones == 6
    assert game.moves[0].player == WHITE


def test_first_player_white_after_black_setup(tmp_path: Path) -> None:
    """Handicap stones without PL or moves: White moves first, as in KataGo's CompactSgf."""
    (game,) = _games(tmp_path, "(;SZ[9]AB[cc][gg])")
    assert game.first_player == WHITE


def test_first_player_from_pl(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[9]AB[cc]AW[gg]PL[W])")
    assert game.first_player == WHITE


def test_first_move_overrides_pl(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[9]AB[cc][gg]PL[W];B[dd])")
    assert game.first_player == BLACK


def test_setup_after_moves_is_problem(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[9];B[aa];W[bb];AB[cc];B[dd])")
    assert game.problem is not None
    assert "node 3" in game.problem
    assert game.problem_move_number == 2


def test_tt_is_pass_on_19(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[19];B[tt];W[])")
    assert game.moves[0].is_pass
    assert game.moves[1].is_pass


def test_move_off_board_is_problem(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[5];B[aa];W[gg])")
    assert "off the 5x5 board" in game.problem


def test_non_go_game_is_problem(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;GM[2]SZ[8];B[aa])")
    assert "not Go" in game.problem


def test_malformed_sgf_is_problem(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[9];B[aa]")
    assert game.problem.startswith("malformed SGF")


def test_rectangular_board_size(tmp_path: Path) -> None:
    (game,) = _games(tmp_path, "(;SZ[7:5];B[ge])")
    assert (game.x_size, game.y_size) == (7, 5)
    assert (game.moves[0].x, game.moves[0].y) == (6, 4)


def test_sgfs_one_game_per_line(tmp_path: Path) -> None:
    games = _games(tmp_path, "(;SZ[5];B[aa])\n\n(;SZ[5];B[bb];W[cc])\n", name="games.sgfs")
    assert [game.game_index for game in games] == [0, 1]
    assert [len(game.moves) for game in games] == [1, 2]


def test_root_comment_fields(tmp_path: Path) -> None:
    comment = "startTurnIdx=3,initTurnNum=0,gtype=asym,pdaWhite=-1.65342,beganInEncorePhase=1"
    (game,) = _games(tmp_path, f"(;SZ[7]C[{comment}];B[aa])")
    assert game.pda_white == -1.65342
    assert game.starting_encore_phase == 1
    assert parse_root_comment("a=1,b")["a"] == "1"


@pytest.mark.shared
def test_lines_match_reference(shared_data: Path) -> None:
    """Each line of KataGo's test SGFs has the moves, setup and first player of the reference table."""
    folder = shared_data / "sgf_features"
    with open(folder / "sgf-tests-games.csv", newline="") as handle:
        expected = list(csv.DictReader(handle))
    for row in expected:
        games = list(read_sgf_games(folder / "sgf" / row["sgf_file"]))
        game = games[int(row["game_index"])]
        label = f"{row['sgf_file']} line {row['game_index']}"
        assert len(game.moves) == int(row["num_moves"]), label
        assert "BW"[game.first_player - 1] == row["first_player"], label
        assert sum(c == BLACK for node in game.setup for _, _, c in node) == int(row["setup_black"]), label
        assert sum(c == WHITE for node in game.setup for _, _, c in node) == int(row["setup_white"]), label
        if row["skip_reason"].startswith("setup properties"):
            assert game.problem == row["skip_reason"], label


@pytest.mark.shared
def test_sgfs_file_game_count(shared_data: Path) -> None:
    games = list(read_sgf_games(shared_data / "sgf7" / "AFD4C8C7C06DFC0C.sgfs"))
    assert len(games) == 1000
    assert all(game.problem is None for game in games)
