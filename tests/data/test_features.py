"""Version-7 input features and SGF rows, compared bit for bit with KataGo's C++ fillRowV7."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from kgzarr.data.features import featurize_game, fill_row_v7
from kgzarr.data.go.board import BLACK, PASS_LOC, WHITE, Board, loc_of
from kgzarr.data.go.history import BoardHistory
from kgzarr.data.go.rules import Rules, parse_rules
from kgzarr.data.sgf import read_sgf_games
from kgzarr.data.sgf_source import (
    _initial_board,
    _move_locs,
    featurize_sgf_game,
    game_rules,
    parse_positions,
    read_sgf_positions,
)
from kgzarr.errors import ConfigError, SgfError

SGF7 = Path("sgf7") / "AFD4C8C7C06DFC0C.sgfs"
# (SGF name, npz suffix): every board has a file at pos_len = board size, and boards below 19x19 one at 19.
TEST_SGF_CASES = [
    *[(name, "") for name in ("sampletest7x7", "sampletest9x9", "messy", "cornermoves", "foxlike", "humanslbigdiff")],
    *[(name, "-L19") for name in ("sampletest7x7", "sampletest9x9", "messy")],
]


def _unpack(packed: np.ndarray, pos_len: int) -> np.ndarray:
    rows = packed.shape[0]
    return np.unpackbits(packed, axis=2)[:, :, : pos_len * pos_len].reshape(rows, 22, pos_len, pos_len)


def _assert_rows_equal(mine: dict[str, np.ndarray], ref: dict[str, np.ndarray], pos_len: int) -> None:
    """Compare planes one plane at a time and globals one global at a time, bit for bit."""
    mine_planes = _unpack(mine["binaryInputNCHWPacked"], pos_len)
    ref_planes = _unpack(ref["binaryInputNCHWPacked"], pos_len)
    assert mine_planes.shape == ref_planes.shape
    for plane in range(22):
        assert np.array_equal(mine_planes[:, plane], ref_planes[:, plane]), f"plane {plane}"
    for index in range(19):
        assert np.array_equal(mine["globalInputNC"][:, index], ref["globalInputNC"][:, index]), f"global {index}"
    assert np.array_equal(mine["binaryInputNCHWPacked"], ref["binaryInputNCHWPacked"])


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def _sgf7_games(shared_data: Path, count: int) -> list:
    return list(read_sgf_games(shared_data / SGF7))[:count]


def _featurize_games(games: list, pos_len: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    parts = [featurize_sgf_game(game, pos_len=pos_len, selection=parse_positions("all")) for game in games]
    arrays = {key: np.concatenate([part[0][key] for part in parts]) for key in parts[0][0]}
    coords = {key: np.concatenate([part[1][key] for part in parts]) for key in parts[0][1]}
    return arrays, coords


@pytest.fixture(scope="module")
def sgf7_rows(shared_data: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return _featurize_games(_sgf7_games(shared_data, 200), pos_len=7)


@pytest.mark.shared
def test_sgf7_matches_cpp(shared_data: Path, sgf7_rows: tuple) -> None:
    """All 6720 positions of games 0-199, encore included, equal KataGo's C++ features."""
    folder = shared_data / "sgf_features"
    files = sorted(folder.glob("sgf7-all-000*.npz"))
    ref = {key: np.concatenate([_load(path)[key] for path in files]) for key in ("binaryInputNCHWPacked", "globalInputNC")}
    _assert_rows_equal(sgf7_rows[0], ref, pos_len=7)


@pytest.mark.shared
def test_sgf7_coords_match(shared_data: Path, sgf7_rows: tuple) -> None:
    with open(shared_data / "sgf_features" / "sgf7-all.csv", newline="") as handle:
        expected = list(csv.DictReader(handle))
    coords = sgf7_rows[1]
    assert [int(row["game_index"]) for row in expected] == coords["game_index"].tolist()
    assert [int(row["move_number"]) for row in expected] == coords["move_number"].tolist()
    assert [int(row["encore_phase"]) for row in expected] == coords["encore_phase"].tolist()
    assert [row["player_to_move"] for row in expected] == coords["player_to_move"].tolist()
    assert [row["played_move"] for row in expected] == coords["next_move"].tolist()


@pytest.mark.shared
def test_sgf7_npz_subset_matches(shared_data: Path, sgf7_rows: tuple) -> None:
    """The Python-featurizer rows in sgf7_npz, matched by (game, move), equal ours including the policy."""
    folder = shared_data / "sgf7_npz"
    ref = {key: np.concatenate([_load(path)[key] for path in sorted(folder.glob("data-*.npz"))]) for key in
           ("binaryInputNCHWPacked", "globalInputNC", "policyTargetsNCMove")}
    with open(folder / "positions.csv", newline="") as handle:
        keys = [(int(row["game_index"]), int(row["move_number"])) for row in csv.DictReader(handle)]
    arrays, coords = sgf7_rows
    row_of = {key: i for i, key in enumerate(zip(coords["game_index"].tolist(), coords["move_number"].tolist()))}
    rows = np.array([row_of[key] for key in keys])
    mine = {key: value[rows] for key, value in arrays.items()}
    _assert_rows_equal(mine, ref, pos_len=7)
    assert np.array_equal(mine["policyTargetsNCMove"], ref["policyTargetsNCMove"])


@pytest.mark.shared
@pytest.mark.parametrize(("name", "suffix"), TEST_SGF_CASES)
def test_katago_sgfs_match_cpp(shared_data: Path, name: str, suffix: str) -> None:
    """KataGo's test SGFs (variations, setup, handicap bonus, Fox komi) equal the C++ rows."""
    folder = shared_data / "sgf_features"
    ref_path = folder / f"{name}{suffix}.npz"
    sgf_path = folder / "sgf" / f"{name}.sgf"
    pos_len = 19 if suffix else next(read_sgf_games(sgf_path)).x_size
    batch = read_sgf_positions(sgf_path, pos_len=pos_len, skip_bad=True)
    _assert_rows_equal(batch.arrays, _load(ref_path), pos_len)


@pytest.mark.shared
def test_skipped_lines_rejected(shared_data: Path) -> None:
    """The lines the reference skipped as invalid are rejected, with their move numbers."""
    batch = read_sgf_positions(shared_data / "sgf_features" / "sgf" / "messy.sgf", pos_len=9, skip_bad=True)
    rejected = {(game, move) for _, game, move, _ in batch.rejected}
    assert rejected == {(1, 6), (2, 6), (5, 2)}
    reason = [reason for _, game, _, reason in batch.rejected if game == 5][0]
    assert "W ic" in reason
    assert "out of turn" in reason


def _write(tmp_path: Path, text: str, name: str = "game.sgf") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_off_board_planes_zero() -> None:
    """With pos_len larger than the board, plane 0 marks only the board and nothing is set outside it."""
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, Rules())
    hist.make_board_move_assume_legal(board, loc_of(2, 2, 5), BLACK)
    planes, _ = fill_row_v7(board, hist, WHITE, pos_len=7)
    assert planes[0].sum() == 25
    assert planes[0, :5, :5].all()
    assert not planes[:, 5:, :].any()
    assert not planes[:, :, 5:].any()
    assert planes[2, 2, 2] == 1
    assert planes[9, 2, 2] == 1


def test_komi_global_sign() -> None:
    board = Board(7, 7)
    hist = BoardHistory(board, BLACK, Rules(komi=7.5))
    _, black_globals = fill_row_v7(board, hist, BLACK, pos_len=7)
    _, white_globals = fill_row_v7(board, hist, WHITE, pos_len=7)
    assert black_globals[5] == np.float32(-7.5 / 20)
    assert white_globals[5] == np.float32(7.5 / 20)


def test_pass_shows_in_globals() -> None:
    board = Board(7, 7)
    hist = BoardHistory(board, BLACK, Rules())
    hist.make_board_move_assume_legal(board, PASS_LOC, BLACK)
    _, globals_ = fill_row_v7(board, hist, WHITE, pos_len=7)
    assert globals_[0] == 1.0
    assert globals_[14] == 1.0


def test_policy_target_one_hot(tmp_path: Path) -> None:
    batch = read_sgf_positions(_write(tmp_path, "(;SZ[5]KM[0.5];B[ba];W[];B[ab])"), pos_len=6)
    policy = batch.arrays["policyTargetsNCMove"]
    assert policy.shape == (3, 2, 37)
    assert policy.dtype == np.int16
    assert policy[0, 0, 1] == 1
    assert policy[1, 0, 36] == 1
    assert policy[2, 0, 6] == 1
    assert policy.sum() == 3
    assert batch.arrays["binaryInputNCHWPacked"].shape == (3, 22, 5)


def test_coords_per_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "(;SZ[5]RE[B+R]AB[aa];W[cc];B[])")
    batch = read_sgf_positions(path, pos_len=5)
    coords = batch.coords
    assert coords["move_number"].tolist() == [0, 1]
    assert coords["player_to_move"].tolist() == ["W", "B"]
    assert coords["next_move"].tolist() == ["cc", "pass"]
    assert coords["game_result"].tolist() == ["B+R", "B+R"]
    assert coords["game_file"].tolist() == [str(path), str(path)]
    assert coords["board_x"].tolist() == [5, 5]


@pytest.mark.parametrize(
    ("positions", "expected"),
    [("all", [0, 1, 2, 3, 4]), ("every:2", [0, 2, 4]), ("moves:1-3", [1, 2, 3]), ("last", [4])],
)
def test_positions_selection(tmp_path: Path, positions: str, expected: list[int]) -> None:
    path = _write(tmp_path, "(;SZ[5];B[aa];W[bb];B[cc];W[dd];B[ee])")
    batch = read_sgf_positions(path, pos_len=5, positions=positions)
    assert batch.coords["move_number"].tolist() == expected


def test_selection_keeps_full_history(tmp_path: Path) -> None:
    """A selected row equals the same row featurized with every position kept."""
    path = _write(tmp_path, "(;SZ[5];B[aa];W[bb];B[cc];W[dd];B[ee])")
    every = read_sgf_positions(path, pos_len=5).arrays["binaryInputNCHWPacked"]
    last = read_sgf_positions(path, pos_len=5, positions="last").arrays["binaryInputNCHWPacked"]
    assert np.array_equal(last[0], every[4])


def test_invalid_positions_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        read_sgf_positions(_write(tmp_path, "(;SZ[5];B[aa])"), pos_len=5, positions="every:0")


def test_illegal_move_raises(tmp_path: Path) -> None:
    path = _write(tmp_path, "(;SZ[5];B[aa];W[aa])")
    with pytest.raises(SgfError, match=r"game 0, move 1: move 1 \(W aa\) is illegal: point already occupied"):
        read_sgf_positions(path, pos_len=5)


def test_skip_bad_continues(tmp_path: Path) -> None:
    path = _write(tmp_path, "(;SZ[5];B[aa];W[aa])\n(;SZ[5];B[bb];W[cc])\n", name="games.sgfs")
    batch = read_sgf_positions(path, pos_len=5, skip_bad=True)
    assert batch.num_rows == 2
    assert batch.rejected[0][:3] == (str(path), 0, 1)


def test_board_larger_than_tensor_rejected(tmp_path: Path) -> None:
    with pytest.raises(SgfError, match="larger than the 7x7 tensor"):
        read_sgf_positions(_write(tmp_path, "(;SZ[9];B[aa])"), pos_len=7)


def test_fallback_rules_used_without_ru(tmp_path: Path) -> None:
    path = _write(tmp_path, "(;SZ[5]KM[6];B[aa])")
    batch = read_sgf_positions(path, pos_len=5, rules="Japanese")
    globals_ = batch.arrays["globalInputNC"][0]
    assert globals_[9] == 1.0
    assert globals_[5] == np.float32(-6.0 / 20)


def test_ru_overrides_fallback(tmp_path: Path) -> None:
    path = _write(tmp_path, "(;SZ[5]RU[Chinese];B[aa])")
    globals_ = read_sgf_positions(path, pos_len=5, rules="Japanese").arrays["globalInputNC"][0]
    assert globals_[9] == 0.0
    assert globals_[5] == np.float32(-7.5 / 20)


def test_folder_of_files(tmp_path: Path) -> None:
    _write(tmp_path, "(;SZ[5];B[aa])", name="a.sgf")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "(;SZ[5];B[bb];W[cc])", name="b.sgf")
    batch = read_sgf_positions(tmp_path, pos_len=5)
    assert batch.num_rows == 3


def test_territory_encore_features() -> None:
    """In the second encore, planes 20-21 hold the stones the phase began with."""
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, parse_rules("Japanese"), encore_phase=2)
    hist.make_board_move_assume_legal(board, loc_of(1, 1, 5), BLACK)
    planes, globals_ = fill_row_v7(board, hist, WHITE, pos_len=5)
    assert not planes[20].any()
    assert not planes[21].any()
    assert globals_[12] == 1.0
    assert globals_[13] == 1.0


def _reference_rows(game, keep: list[bool], pos_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Featurize a game position by position with fill_row_v7 and the Python BoardHistory."""
    board = _initial_board(game, pos_len)
    hist = BoardHistory(board, game.first_player, game_rules(game), game.starting_encore_phase)
    planes, globals_ = [], []
    ladder_cache: dict[int, np.ndarray] = {}
    for move_number, (loc, pla) in enumerate(_move_locs(game)):
        if keep[move_number]:
            pda = game.pda_white if pla == WHITE else -game.pda_white
            row = fill_row_v7(
                board, hist, pla, pos_len=pos_len, playout_doubling_advantage=pda, ladder_cache=ladder_cache
            )
            planes.append(row[0])
            globals_.append(row[1])
        hist.make_board_move_assume_legal(board, loc, pla)
    return np.array(planes), np.array(globals_)


@pytest.mark.shared
@pytest.mark.parametrize(("first", "count", "positions"), [(200, 250, "all"), (450, 150, "every:3"), (600, 150, "moves:3-9")])
def test_compiled_replay_matches_fill_row_v7(shared_data: Path, first: int, count: int, positions: str) -> None:
    """The compiled whole-game replay gives the rows of fill_row_v7, also for games past the C++ reference."""
    selection = parse_positions(positions)
    games = list(read_sgf_games(shared_data / SGF7))[first : first + count]
    for game in games:
        keep = selection.keep_mask(len(game.moves))
        board = _initial_board(game, 7)
        features = featurize_game(
            board,
            game.first_player,
            game_rules(game),
            _move_locs(game),
            pos_len=7,
            starting_encore_phase=game.starting_encore_phase,
            pda_white=game.pda_white,
            keep=keep,
        )
        planes, globals_ = _reference_rows(game, keep, pos_len=7)
        assert np.array_equal(features.planes, planes.reshape(features.planes.shape)), f"game {game.game_index}"
        assert np.array_equal(features.globals, globals_.reshape(features.globals.shape)), f"game {game.game_index}"


def test_illegal_move_in_encore_raises(tmp_path: Path) -> None:
    """A move out of turn after the encore began is reported with the reference history's reason."""
    path = _write(tmp_path, "(;SZ[5]RU[Japanese];B[aa];W[];B[];W[bb];W[cc])")
    with pytest.raises(SgfError, match=r"move 4 \(W cc\) is illegal: out of turn"):
        read_sgf_positions(path, pos_len=5)
