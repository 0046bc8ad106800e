"""Ingest: incremental, idempotent, atomic appends of self-play files."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from positions_factory import assert_store_matches_sources, synthetic_arrays

from kgzarr.data.ingest import ingest
from kgzarr.data.store import PositionsStore, open_positions
from kgzarr.errors import (
    ConfigError,
    PositionsFileError,
    PositionsFolderError,
    SourceChangedError,
    StoreFormatError,
)


def test_first_ingest_report(tmp_path: Path, make_folder) -> None:
    folder = make_folder([30, 20, 10])
    store = str(tmp_path / "s.zarr")
    seen: list[tuple[int, int]] = []
    report = ingest(folder, store, chunk_rows=16, progress=lambda done, total: seen.append((done, total)))
    assert report.files_added == 3
    assert report.files_skipped == 0
    assert report.files_rejected == ()
    assert report.rows_added == 60
    assert report.rows_total == 60
    assert report.bytes_read == sum(path.stat().st_size for path in folder.rglob("*.npz"))
    assert report.seconds > 0
    assert seen[-1] == (3, 3)
    assert "3 files added (60 rows)" in report.summary()
    assert_store_matches_sources(store, folder)


def test_rerun_adds_nothing(tmp_path: Path, make_folder) -> None:
    folder = make_folder([30, 20])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store, chunk_rows=16)
    before = PositionsStore(store).attrs
    report = ingest(folder, store)
    assert report.files_added == 0
    assert report.files_skipped == 2
    assert report.rows_total == 50
    assert PositionsStore(store).attrs["files"] == before["files"]


def test_new_file_appends_rows(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([30, 21])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store, chunk_rows=16)
    write_npz(folder / "tdata" / "file05.npz", synthetic_arrays(37, seed=5))
    report = ingest(folder, store)
    assert report.files_added == 1
    assert report.rows_added == 37
    assert report.rows_total == 88
    assert_store_matches_sources(store, folder)


def test_parallel_matches_serial(tmp_path: Path, make_folder) -> None:
    folder = make_folder([70, 3, 45, 90])
    serial = str(tmp_path / "serial.zarr")
    parallel = str(tmp_path / "parallel.zarr")
    ingest(folder, serial, chunk_rows=8, scheduler="sync")
    ingest(folder, parallel, chunk_rows=8, scheduler="threads", workers=4)
    assert_same_store(serial, parallel)
    assert_store_matches_sources(parallel, folder)


def test_groups_commit_separately(tmp_path: Path, make_folder) -> None:
    folder = make_folder([40, 40, 40])
    one = str(tmp_path / "one.zarr")
    many = str(tmp_path / "many.zarr")
    ingest(folder, one, chunk_rows=16)
    ingest(folder, many, chunk_rows=16, max_batch_bytes=1)
    assert_same_store(one, many)


def test_single_file_and_list(tmp_path: Path, make_folder) -> None:
    folder = make_folder([5, 6, 7])
    store = str(tmp_path / "s.zarr")
    report = ingest(folder / "tdata" / "file01.npz", store)
    assert report.rows_total == 6
    report = ingest([folder / "tdata" / "file00.npz", folder / "tdata" / "file02.npz"], store)
    assert report.files_added == 2
    assert [entry["path"] for entry in PositionsStore(store).files] == ["file01.npz", "file00.npz", "file02.npz"]


def test_bad_file_commits_nothing(tmp_path: Path, make_folder) -> None:
    folder = make_folder([10, 10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    (folder / "tdata" / "file01b.npz").write_bytes(b"garbage")
    (folder / "tdata" / "file03.npz").write_bytes((folder / "tdata" / "file00.npz").read_bytes()[::-1])
    with pytest.raises(PositionsFileError, match="file01b.npz: not a zip archive.*1 more files"):
        ingest(folder, store)
    assert PositionsStore(store).num_rows == 20


def test_skip_bad_lists_rejected(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([10])
    bad = synthetic_arrays(4, seed=3)
    bad["globalInputNC"][1, 0] = np.nan
    write_npz(folder / "tdata" / "bad.npz", bad)
    store = str(tmp_path / "s.zarr")
    report = ingest(folder, store, skip_bad=True)
    assert report.files_added == 1
    assert len(report.files_rejected) == 1
    assert report.files_rejected[0][0].endswith("bad.npz")
    assert "NaN or inf" in report.files_rejected[0][1]


def test_other_tensor_size_rejected(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    write_npz(folder / "tdata" / "nine.npz", synthetic_arrays(4, side=9))
    with pytest.raises(PositionsFileError, match="tensor is 9x9, but the store contains 7x7"):
        ingest(folder, store)


def test_other_channel_count_rejected(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    arrays = synthetic_arrays(4)
    arrays["globalTargetsNC"] = arrays["globalTargetsNC"][:, :64].copy()
    write_npz(folder / "tdata" / "old.npz", arrays)
    with pytest.raises(PositionsFileError, match=r"globalTargetsNC has rows of shape \(64,\)"):
        ingest(folder, store)


def test_changed_file_raises(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([10, 10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    write_npz(folder / "tdata" / "file00.npz", synthetic_arrays(12, seed=77))
    with pytest.raises(SourceChangedError, match="file00.npz: content changed"):
        ingest(folder, store)
    assert PositionsStore(store).num_rows == 20


def test_replace_reingests_changed(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([10, 10, 10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store, chunk_rows=8)
    write_npz(folder / "tdata" / "file01.npz", synthetic_arrays(13, seed=77))
    report = ingest(folder, store, replace=True)
    assert report.rows_total == 33
    assert_store_matches_sources(store, folder)


def test_replace_needs_later_files(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([10, 10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    write_npz(folder / "tdata" / "file00.npz", synthetic_arrays(13, seed=77))
    with pytest.raises(ConfigError, match="files ingested after it"):
        ingest(folder / "tdata" / "file00.npz", store, replace=True)


def test_rebuild_starts_over(tmp_path: Path, make_folder) -> None:
    folder = make_folder([10, 10])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store, chunk_rows=8)
    (folder / "tdata" / "file01.npz").unlink()
    report = ingest(folder, store, rebuild=True, chunk_rows=4)
    assert report.rows_total == 10
    assert PositionsStore(store).chunk_rows == 4
    assert_store_matches_sources(store, folder)


def test_duplicate_content_skipped(tmp_path: Path, make_folder) -> None:
    folder = make_folder([10, 7])
    (folder / "copy.npz").write_bytes((folder / "tdata" / "file00.npz").read_bytes())
    report = ingest(folder, str(tmp_path / "s.zarr"))
    assert report.files_added == 2
    assert report.files_skipped == 1
    assert report.rows_total == 17


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PositionsFolderError, match="not found"):
        ingest(tmp_path / "absent", str(tmp_path / "s.zarr"))


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PositionsFolderError, match=r"no \*\.npz, \*\.sgf or \*\.sgfs files found"):
        ingest(tmp_path / "empty", str(tmp_path / "s.zarr"))


def test_store_path_not_a_store(tmp_path: Path, make_folder) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    with pytest.raises(StoreFormatError, match="not empty and is not a Zarr store"):
        ingest(make_folder([3]), str(occupied))
    assert (occupied / "notes.txt").read_text() == "keep me"


def test_summary_logged_once(tmp_path: Path, make_folder, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kgzarr"):
        ingest(make_folder([4]), str(tmp_path / "s.zarr"))
    lines = [record for record in caplog.records if record.getMessage().startswith("ingest ")]
    assert len(lines) == 1


# ------------------------------------------------------------------ SIGKILL

_INGEST_SCRIPT = (
    "import sys; from kgzarr.data.ingest import ingest; "
    "ingest(sys.argv[1], sys.argv[2], chunk_rows=16, max_batch_bytes=1, workers=2)"
)


def _run_ingest(folder: Path, store: Path, kill_after: float | None) -> float:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", _INGEST_SCRIPT, str(folder), str(store)], stderr=subprocess.PIPE)
    if kill_after is None:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    else:
        time.sleep(kill_after)
        process.kill()
        process.communicate(timeout=60)
    return time.monotonic() - started


@pytest.mark.slow
def test_sigkill_then_rerun(tmp_path: Path, make_folder) -> None:
    """Pins an interrupted ingest leaving a store that a re-run cannot finish or that differs from a clean one."""
    folder = make_folder([150, 90, 200, 35, 160, 120, 80, 140])
    reference = tmp_path / "reference.zarr"
    duration = _run_ingest(folder, reference, kill_after=None)
    rng = np.random.default_rng(2024)
    for seed in range(5):
        store = tmp_path / f"killed{seed}.zarr"
        _run_ingest(folder, store, kill_after=float(rng.uniform(0.3, 1.0)) * duration)
        if (store / "zarr.json").exists():
            _assert_committed_rows_match(str(store), folder)
        # The user re-runs the same command; a kill before the first commit
        # leaves no record of the chunk size that command asked for.
        _run_ingest(folder, store, kill_after=None)
        assert_same_store(str(reference), str(store))


def _assert_committed_rows_match(store: str, folder: Path) -> None:
    try:
        positions = PositionsStore(store)
    except StoreFormatError:
        return  # killed before the first commit wrote the attrs
    dataset = open_positions(store)
    for entry in positions.files:
        rows = slice(entry["first_row"], entry["first_row"] + entry["rows"])
        with np.load(folder / entry["path"]) as source:
            assert np.array_equal(dataset["global_input"].values[rows], source["globalInputNC"])


def assert_same_store(expected: str, actual: str) -> None:
    """Assert two stores hold the same committed arrays and the same attrs, apart from times."""
    left = zarr.open_group(expected, mode="r")
    right = zarr.open_group(actual, mode="r")
    volatile = {"created", "updated", "ingest_root", "ingest_root_absolute"}
    left_attrs = {key: value for key, value in left.attrs.items() if key not in volatile}
    right_attrs = {key: value for key, value in right.attrs.items() if key not in volatile}
    assert left_attrs == right_attrs
    rows = left.attrs["committed_rows"]
    assert sorted(left.array_keys()) == sorted(right.array_keys())
    for name in left.array_keys():
        assert left[name].shape == right[name].shape, name
        assert left[name].chunks == right[name].chunks, name
        assert np.array_equal(left[name][:rows], right[name][:rows]), name


# ------------------------------------------------------------------ SGF input


@pytest.fixture
def three_games(shared_data: Path, tmp_path: Path) -> Path:
    lines = (shared_data / "sgf7" / "AFD4C8C7C06DFC0C.sgfs").read_text().splitlines()[:3]
    path = tmp_path / "games" / "three.sgfs"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.shared
def test_sgf_rows_and_coords(three_games: Path, tmp_path: Path, write_npz) -> None:
    sgf_source = pytest.importorskip("kgzarr.data.sgf_source")
    expected = sgf_source.read_sgf_positions(three_games, pos_len=7)
    store = str(tmp_path / "s.zarr")
    arrays = synthetic_arrays(5)
    keys = ("binaryInputNCHWPacked", "globalInputNC", "policyTargetsNCMove")
    ingest(write_npz(tmp_path / "npz" / "five.npz", {key: arrays[key] for key in keys}), store)
    report = ingest(three_games, store)
    assert report.rows_added == expected.num_rows

    dataset = open_positions(store)
    sgf_rows = slice(5, 5 + expected.num_rows)
    assert np.array_equal(dataset["global_input"].values[sgf_rows], expected.arrays["globalInputNC"])
    assert np.array_equal(dataset["policy_targets"].values[sgf_rows], expected.arrays["policyTargetsNCMove"])
    for name, values in expected.coords.items():
        assert np.array_equal(dataset[name].values[sgf_rows].astype(np.asarray(values).dtype), values), name
    assert (dataset["game_index"].values[:5] == -1).all()
    assert (dataset["source_file"].values[sgf_rows] == "../games/three.sgfs").all()


@pytest.mark.shared
def test_sgf_into_full_store_rejected(three_games: Path, tmp_path: Path, make_folder) -> None:
    pytest.importorskip("kgzarr.data.sgf_source")
    store = str(tmp_path / "s.zarr")
    ingest(make_folder([5]), store)
    with pytest.raises(PositionsFileError, match="three.sgfs: lacks array globalTargetsNC"):
        ingest(three_games, store)


def test_folder_of_games_ingested(tmp_path: Path, shared_data: Path) -> None:
    """A folder holding only SGF games ingests them without any flag."""
    games = tmp_path / "games"
    games.mkdir()
    lines = (shared_data / "sgf7" / "AFD4C8C7C06DFC0C.sgfs").read_text().splitlines()[:3]
    (games / "three.sgfs").write_text("\n".join(lines) + "\n")
    report = ingest(games, str(tmp_path / "s.zarr"), board_size=7)
    assert report.files_added == 1
    assert report.rows_added == sum(line.count(";B[") + line.count(";W[") for line in lines)


def test_selfplay_sgfs_ignored_beside_npz(tmp_path: Path, shared_data: Path) -> None:
    """Self-play output contains each game as .npz rows and as .sgfs; only the rows are ingested by default."""
    selfplay = shared_data / "selfplay7"
    report = ingest(selfplay, str(tmp_path / "s.zarr"))
    npz_files = sorted(selfplay.rglob("*.npz"))
    assert report.files_added == len(npz_files)
