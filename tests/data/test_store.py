"""The positions store: layout, xarray view, info and source checks."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zarr
from positions_factory import assert_store_matches_sources, synthetic_arrays

from kgzarr.data.bits import board_sizes
from kgzarr.data.ingest import ingest
from kgzarr.data.store import (
    FORMAT_VERSION,
    PositionsStore,
    check_sources,
    open_positions,
    read_rows,
    store_info,
    verify_sources,
)
from kgzarr.errors import SourceChangedError, StoreFormatError

# Row counts by board size (x, y) from the selfplay_mixed README, which were
# counted from KataGo's own game records.
MIXED_BOARD_COUNTS = {
    (7, 7): 296, (6, 6): 340, (5, 5): 323, (6, 7): 89, (5, 6): 51,
    (7, 6): 45, (7, 5): 42, (5, 7): 36, (6, 5): 15,
}


@pytest.fixture(scope="module")
def mixed_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    store = str(tmp_path_factory.mktemp("mixed") / "mixed.zarr")
    ingest(shared_data / "selfplay_mixed", store, chunk_rows=256)
    return store


@pytest.mark.shared
@pytest.mark.parametrize("folder", ["selfplay7", "sgf7_npz"])
def test_store_equals_sources(shared_data: Path, tmp_path: Path, folder: str) -> None:
    store = str(tmp_path / "store.zarr")
    report = ingest(shared_data / folder, store, chunk_rows=512, board_size=7)
    assert report.rows_total == {"selfplay7": 3654, "sgf7_npz": 5772}[folder]
    assert_store_matches_sources(store, shared_data / folder)


@pytest.mark.shared
def test_mixed_equals_sources(shared_data: Path, mixed_store: str) -> None:
    assert_store_matches_sources(mixed_store, shared_data / "selfplay_mixed")


@pytest.mark.shared
def test_mixed_board_counts(mixed_store: str) -> None:
    dataset = open_positions(mixed_store)
    pairs = zip(dataset["board_x"].values.tolist(), dataset["board_y"].values.tolist())
    assert dict(Counter(pairs)) == MIXED_BOARD_COUNTS


@pytest.mark.shared
def test_info_board_sizes(mixed_store: str) -> None:
    info = store_info(mixed_store)
    assert info["rows"] == 1237
    assert info["files"] == 4
    assert info["tensor_size"] == "7x7"
    assert info["board_sizes"] == {f"{x}x{y}": n for (x, y), n in MIXED_BOARD_COUNTS.items()}
    assert info["arrays"]["binary_input_packed"]["shape"] == [1237, 22, 7]
    assert info["arrays"]["binary_input_packed"]["chunks"] == [256, 22, 7]
    assert info["bytes_on_disk"] > 0
    assert info["compression_ratio"] > 2


@pytest.mark.shared
def test_kata19_rectangular(shared_data: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "kata19.zarr")
    ingest(shared_data / "kata19", store)
    positions = PositionsStore(store)
    assert positions.tensor_size == (19, 19)
    assert positions.chunk_rows == 4096
    with np.load(shared_data / "kata19" / "benchmark_data_1024.npz") as source:
        expected_x, expected_y = board_sizes(source["binaryInputNCHWPacked"], 19, 19)
        globals_ = source["globalInputNC"]
    rows = read_rows(store, 0, 1024)
    assert np.array_equal(rows["board_x"], expected_x)
    assert np.array_equal(rows["board_y"], expected_y)
    assert np.array_equal(rows["global_input"], globals_)
    assert int((rows["board_x"] != rows["board_y"]).sum()) == 60
    assert int(((rows["board_x"] == 19) & (rows["board_y"] == 19)).sum()) == 709


def test_read_rows_range(tmp_path: Path, make_folder) -> None:
    folder = make_folder([30, 20])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store, chunk_rows=16)
    rows = read_rows(store, 25, 35)
    assert sorted(rows) == ["binary_input_packed", "board_x", "board_y", "global_input"]
    expected = np.concatenate([synthetic_arrays(30, seed=0)["globalInputNC"][25:], synthetic_arrays(20, seed=1)["globalInputNC"][:5]])
    assert np.array_equal(rows["global_input"], expected)
    with pytest.raises(IndexError, match="outside the 50 committed rows"):
        read_rows(store, 40, 51)


def test_source_paths_join_root(tmp_path: Path, make_folder) -> None:
    folder = make_folder([3, 2])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    paths = PositionsStore(store).source_paths()
    assert paths == [str(folder / "tdata" / "file00.npz")] * 3 + [str(folder / "tdata" / "file01.npz")] * 2


def test_open_reads_no_chunks(tmp_path: Path, make_folder) -> None:
    """Pins opening a large store being slow because it touched chunk data."""
    store = tmp_path / "s.zarr"
    ingest(make_folder([40]), str(store), chunk_rows=16)
    for chunk_folder in store.glob("*/c"):
        shutil.rmtree(chunk_folder)
    dataset = open_positions(str(store))
    assert dataset.sizes["position"] == 40
    assert dataset["binary_input"].shape == (40, 22, 7, 7)
    assert dataset["global_input"].chunks == ((16, 16, 8), (19,))


def test_uncommitted_rows_ignored(tmp_path: Path, make_folder) -> None:
    store = str(tmp_path / "s.zarr")
    ingest(make_folder([10]), store, chunk_rows=8)
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    for name in group.array_keys():
        array = group[name]
        array.resize((25, *array.shape[1:]))
    assert open_positions(store).sizes["position"] == 10
    assert PositionsStore(store).num_rows == 10


def test_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreFormatError, match="not a Zarr store"):
        PositionsStore(str(tmp_path / "nothing.zarr"))
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreFormatError, match="not a kgzarr positions store"):
        open_positions(str(tmp_path / "plain.zarr"))


def test_newer_format_rejected(tmp_path: Path, make_folder) -> None:
    store = str(tmp_path / "s.zarr")
    ingest(make_folder([4]), store)
    zarr.open_group(store, mode="r+").attrs["kgzarr_format_version"] = FORMAT_VERSION + 1
    with pytest.raises(StoreFormatError, match="newer than"):
        PositionsStore(store)


def test_memory_url(make_folder) -> None:
    store = "memory://kgzarr-test/positions.zarr"
    report = ingest(make_folder([12, 5]), store, chunk_rows=8)
    assert report.rows_total == 17
    dataset = open_positions(store)
    assert np.array_equal(dataset["global_input"].values[12:], synthetic_arrays(5, seed=1)["globalInputNC"])
    assert store_info(store)["rows"] == 17


def test_file_url(tmp_path: Path, make_folder) -> None:
    store = f"file://{tmp_path}/s.zarr"
    ingest(make_folder([6]), store)
    assert PositionsStore(store).num_rows == 6
    assert (tmp_path / "s.zarr" / "zarr.json").is_file()


def test_attrs_layout(tmp_path: Path, make_folder) -> None:
    store = tmp_path / "s.zarr"
    folder = make_folder([6, 4])
    ingest(folder, str(store))
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    assert attrs["kgzarr_format_version"] == FORMAT_VERSION
    assert attrs["committed_rows"] == 10
    assert attrs["tensor_size"] == [7, 7]
    assert attrs["num_binary_features"] == 22
    assert attrs["num_global_features"] == 19
    assert attrs["arrays"]["policy_targets"] == "policyTargetsNCMove"
    assert [entry["first_row"] for entry in attrs["files"]] == [0, 6]
    assert attrs["files"][1]["path"] == "tdata/file01.npz"
    assert attrs["files"][1]["size"] == (folder / "tdata" / "file01.npz").stat().st_size


def test_fingerprint_changes(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([5])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    before = PositionsStore(store).content_fingerprint
    ingest(folder, store)
    assert PositionsStore(store).content_fingerprint == before
    write_npz(folder / "tdata" / "zz.npz", synthetic_arrays(3, seed=9))
    ingest(folder, store)
    assert PositionsStore(store).content_fingerprint != before


def test_verify_sources(tmp_path: Path, make_folder, write_npz) -> None:
    folder = make_folder([5, 5, 5])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    assert verify_sources(store) == []
    check_sources(store)
    write_npz(folder / "tdata" / "file01.npz", synthetic_arrays(5, seed=42))
    (folder / "tdata" / "file02.npz").unlink()
    assert verify_sources(store) == ["tdata/file01.npz", "tdata/file02.npz"]
    with pytest.raises(SourceChangedError, match="2 source files"):
        check_sources(store)


def test_verify_moved_root(tmp_path: Path, make_folder) -> None:
    folder = make_folder([5])
    store = str(tmp_path / "s.zarr")
    ingest(folder, store)
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert verify_sources(store) == ["tdata/file00.npz"]
    assert verify_sources(store, positions_root=moved) == []
