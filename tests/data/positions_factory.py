"""Builders of small, valid KataGo training arrays for the positions-store tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_arrays(num_rows: int, side: int = 7, *, seed: int = 0, boards: list[tuple[int, int]] | None = None) -> dict[str, np.ndarray]:
    """Return valid training arrays of ``num_rows`` rows; row i has board ``boards[i % len(boards)]`` (x, y)."""
    rng = np.random.default_rng(seed)
    boards = boards or [(side, side)]
    planes = rng.integers(0, 2, size=(num_rows, 22, side, side), dtype=np.uint8)
    planes[:, 0] = 0
    for row in range(num_rows):
        width, height = boards[row % len(boards)]
        planes[row, 0, :height, :width] = 1
    packed = np.packbits(planes.reshape(num_rows, 22, side * side), axis=-1)
    points = side * side + 1
    return {
        "binaryInputNCHWPacked": packed,
        "globalInputNC": rng.standard_normal((num_rows, 19)).astype(np.float32),
        "policyTargetsNCMove": rng.integers(0, 100, (num_rows, 2, points)).astype(np.int16),
        "globalTargetsNC": rng.standard_normal((num_rows, 80)).astype(np.float32),
        "scoreDistrN": rng.integers(0, 100, (num_rows, 218)).astype(np.int8),
        "valueTargetsNCHW": rng.integers(-1, 2, (num_rows, 5, side, side)).astype(np.int8),
        "qValueTargetsNCMove": rng.integers(-100, 100, (num_rows, 3, points)).astype(np.int16),
    }


def assert_store_matches_sources(store: str, root: Path) -> None:
    """Assert that every row of every .npz under ``root`` is in the store, bit for bit, at its coordinates."""
    from kgzarr.data.npz import NPZ_ARRAYS
    from kgzarr.data.store import PositionsStore, open_positions

    positions = PositionsStore(store)
    dataset = open_positions(store).compute()
    files = sorted(root.rglob("*.npz"))
    assert [entry["path"] for entry in positions.files] == [path.relative_to(root).as_posix() for path in files]
    assert dataset.sizes["position"] == sum(entry["rows"] for entry in positions.files)
    source_file = dataset["source_file"].values
    for entry, path in zip(positions.files, files):
        rows = slice(entry["first_row"], entry["first_row"] + entry["rows"])
        assert (source_file[rows] == entry["path"]).all(), path
        assert np.array_equal(dataset["source_row"].values[rows], np.arange(entry["rows"])), path
        with np.load(path) as source:
            side = source["binaryInputNCHWPacked"].shape[2]
            height, width = positions.tensor_size
            planes = np.unpackbits(source["binaryInputNCHWPacked"], axis=2)[:, :, : height * width]
            assert side == (height * width + 7) // 8
            assert np.array_equal(dataset["binary_input"].values[rows], planes.reshape(-1, planes.shape[1], height, width)), path
            packed = positions.array("binary_input_packed")[rows]
            assert np.array_equal(packed, source["binaryInputNCHWPacked"]), path
            for key in source.files:
                name = NPZ_ARRAYS[key].store_name
                if name != "binary_input_packed":
                    assert np.array_equal(dataset[name].values[rows], source[key], equal_nan=True), (path, key)
