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
ROWS_PER_FILE = 250_000
CHANNELS = 16

# grid:3 pooling makes 9 * 16 = 144 columns, so the N×C float32 matrix alone
# is 576 MB; a run that held it in memory would exceed the bound. The rest is
# the Python, torch, Dask and Zarr imports plus two chunk tasks of 16384 rows
# (about 550-700 MB measured on a 2-core Linux VM, at 10^5 and 10^6 rows alike).
PEAK_BOUND_MB = 1000

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


@pytest.mark.slow
def test_peak_memory_bounded(tmp_path: Path) -> None:
    _write_positions(tmp_path / "positions")
    store = str(tmp_path / "store.zarr")
    kgzarr.ingest(tmp_path / "positions", store)
    model = tmp_path / "wide.bin.gz"
    desc = random_model("wide", num_blocks=1, trunk_channels=CHANNELS, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"])
    write_model(desc, model)

    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, store, str(model), str(tmp_path / "out")],
        capture_output=True, text=True, check=True, timeout=300,
    )

    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["rows"] == ROWS
    assert result["peak_mb"] < PEAK_BOUND_MB, f"peak {result['peak_mb']:.0f} MB over {ROWS} rows ({result['seconds']:.0f} s)"
    assert np.load(tmp_path / "out" / "pooled_trunk_after_embedding.npy", mmap_mode="r").shape == (ROWS, 9 * CHANNELS)
