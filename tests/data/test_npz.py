"""Reading and validating KataGo training .npz files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from positions_factory import synthetic_arrays

from kgzarr.data.npz import read_positions_file
from kgzarr.errors import PositionsFileError


@pytest.mark.shared
def test_real_file_matches_np_load(shared_data: Path) -> None:
    path = sorted((shared_data / "selfplay7").rglob("*.npz"))[0]
    result = read_positions_file(path)
    with np.load(path) as expected:
        assert sorted(result.arrays) == sorted(expected.files)
        for key in expected.files:
            assert np.array_equal(result.arrays[key], expected[key]), key
    assert result.tensor_side == 7
    assert result.num_rows == expected_rows(path)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.size == path.stat().st_size


def expected_rows(path: Path) -> int:
    with np.load(path) as data:
        return int(data["globalInputNC"].shape[0])


@pytest.mark.shared
def test_kata19_side_and_targets(shared_data: Path) -> None:
    result = read_positions_file(shared_data / "kata19" / "benchmark_data_1024.npz", board_size=19)
    assert result.tensor_side == 19
    assert result.num_rows == 1024
    assert result.arrays["globalTargetsNC"].shape == (1024, 64)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(PositionsFileError, match="broken.npz: not a zip archive"):
        read_positions_file(path)


def test_truncated_file(tmp_path: Path, write_npz) -> None:
    path = write_npz(tmp_path / "cut.npz", synthetic_arrays(50))
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(PositionsFileError, match="cut.npz"):
        read_positions_file(path)


def test_missing_required_array(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(4)
    del arrays["globalInputNC"]
    path = write_npz(tmp_path / "noglobals.npz", arrays)
    with pytest.raises(PositionsFileError, match="noglobals.npz: missing required array globalInputNC"):
        read_positions_file(path)


def test_inconsistent_row_counts(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(4)
    arrays["policyTargetsNCMove"] = arrays["policyTargetsNCMove"][:3]
    path = write_npz(tmp_path / "rows.npz", arrays)
    with pytest.raises(PositionsFileError, match="different row counts.*policyTargetsNCMove=3"):
        read_positions_file(path)


def test_zero_rows(tmp_path: Path, write_npz) -> None:
    arrays = {key: value[:0] for key, value in synthetic_arrays(2).items()}
    path = write_npz(tmp_path / "empty.npz", arrays)
    with pytest.raises(PositionsFileError, match="empty.npz: the file has zero rows"):
        read_positions_file(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_globals(tmp_path: Path, write_npz, value: float) -> None:
    arrays = synthetic_arrays(6)
    arrays["globalInputNC"][4, 3] = value
    path = write_npz(tmp_path / "nan.npz", arrays)
    with pytest.raises(PositionsFileError, match="row 4, global feature 3"):
        read_positions_file(path)


def test_empty_on_board_plane(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(6)
    arrays["binaryInputNCHWPacked"][2, 0, :] = 0
    path = write_npz(tmp_path / "offboard.npz", arrays)
    with pytest.raises(PositionsFileError, match="row 2 has an all-zero on-board plane"):
        read_positions_file(path)


def test_board_size_mismatch(tmp_path: Path, write_npz) -> None:
    path = write_npz(tmp_path / "nine.npz", synthetic_arrays(3, side=9))
    with pytest.raises(PositionsFileError, match="tensor is 9x9, but --board-size 7"):
        read_positions_file(path, board_size=7)


def test_wrong_dtype(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(3)
    arrays["globalInputNC"] = arrays["globalInputNC"].astype(np.float64)
    path = write_npz(tmp_path / "f64.npz", arrays)
    with pytest.raises(PositionsFileError, match="globalInputNC has dtype float64, expected float32"):
        read_positions_file(path)


def test_policy_length_mismatch(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(3)
    arrays["policyTargetsNCMove"] = arrays["policyTargetsNCMove"][:, :, :40]
    path = write_npz(tmp_path / "policy.npz", arrays)
    with pytest.raises(PositionsFileError, match="policyTargetsNCMove has 40 moves per row"):
        read_positions_file(path)


def test_big_endian_accepted(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(3)
    arrays["globalInputNC"] = arrays["globalInputNC"].astype(">f4")
    path = write_npz(tmp_path / "be.npz", arrays)
    result = read_positions_file(path)
    assert np.array_equal(result.arrays["globalInputNC"], arrays["globalInputNC"])


def test_unknown_member_ignored(tmp_path: Path, write_npz) -> None:
    arrays = synthetic_arrays(3)
    arrays["extraThing"] = np.zeros(3)
    path = write_npz(tmp_path / "extra.npz", arrays)
    result = read_positions_file(path)
    assert result.ignored_keys == ("extraThing",)
    assert "extraThing" not in result.arrays
