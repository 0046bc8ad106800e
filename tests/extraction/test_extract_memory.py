"""Peak memory of extract() does not grow with the number of rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kgzarr
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

ROWS = 1_000_000
SMALL_ROWS = 100_000
ROWS_PER_FILE = 100_000
CHANNELS = 16
COLUMNS = 9 * CHANNELS  # grid:3 pooling

# The N×C float32 matrix at 10^6 rows is 576 MB. A run that held it (or any
# per-row float array of that width) in memory would add about 520 MB between
# 10^5 and 10^6 rows; a streaming run adds only what the row index needs
# (source paths and coordinates, tens of bytes a row). Half the matrix is the
# bound on that growth.
GROWTH_BOUND_MB = 0.5 * ROWS * COLUMNS * 4 / 2**20
# Absolute bound. Measured peaks on a 2-core Linux VM were 550 to 1465 MB:
# Python, torch, Dask and Zarr imports plus two chunk tasks of 16384 rows,
# with glibc keeping freed memory of each worker thread's arena resident.
PEAK_BOUND_MB = 2000

_MEASURE = """
import json, resource, sys
import kgzarr
store, model, out = sys.argv[1:4]
report = kgzarr.extract(store=store, model=model, layers=["trunk_after_embedding"], out=out, device="cpu", pooling="grid:3")
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mb": peak_mb, "rows": report.rows, "seconds": report.seconds}))
"""


def _write_positions(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for first in range(0, ROWS, ROWS_PER_FILE):
        packed = rng.integers(0, 256, size=(ROWS_PER_FILE, 22, 7), dtype=np.uint8)
        packed[:, 0, :6] = 255  # plane 0: all 49 points of a 7x7 board on the board
        packed[:, 0, 6] = 128
        global_input = rng.normal(size=(ROWS_PER_FILE, 19)).astype(np.float32)
        np.savez(folder / f"rows{first:08d}.npz", binaryInputNCHWPacked=packed, globalInputNC=global_input)


def _measure(store: str, model: Path, out: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, store, str(model), str(out)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_bounded(tmp_path: Path) -> None:
    """Pins an extract whose memory grows with the number of rows, as the script it replaces did."""
    _write_positions(tmp_path / "positions")
    small_store = str(tmp_path / "small.zarr")
    store = str(tmp_path / "store.zarr")
    kgzarr.ingest(tmp_path / "positions" / f"rows{0:08d}.npz", small_store)
    kgzarr.ingest(tmp_path / "positions", store)
    model = tmp_path / "wide.bin.gz"
    desc = random_model("wide", num_blocks=1, trunk_channels=CHANNELS, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"])
    write_model(desc, model)

    small = _measure(small_store, model, tmp_path / "small_out")
    large = _measure(store, model, tmp_path / "out")

    growth = large["peak_mb"] - small["peak_mb"]
    assert small["rows"] == SMALL_ROWS
    assert large["rows"] == ROWS
    assert growth < GROWTH_BOUND_MB, f"peak {small['peak_mb']:.0f} MB at {SMALL_ROWS} rows, {large['peak_mb']:.0f} MB at {ROWS}"
    assert large["peak_mb"] < PEAK_BOUND_MB, f"peak {large['peak_mb']:.0f} MB at {ROWS} rows"
    assert np.load(tmp_path / "out" / "pooled_trunk_after_embedding.npy", mmap_mode="r").shape == (ROWS, COLUMNS)
