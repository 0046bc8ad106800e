"""Measure ingest throughput and store size against reading the same files.

Usage: python benchmarks/bench_ingest.py [POSITIONS_DIR ...] [--repeat N]

For each folder (default: the selfplay7, selfplay_mixed, sgf7_npz and kata19
folders under $KGZARR_SHARED_DATA or ../shared/data) it times
- the baseline: np.load of every array plus unpacking the binary planes;
- a full ingest into a fresh store in a temporary folder;
and reports the store's bytes on disk against the sum of the npz sizes. It
also compares ways of unpacking 16384 rows of packed planes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kgzarr.data.bits import unpack_planes
from kgzarr.data.ingest import ingest
from kgzarr.data.store import store_info

SHARED = Path(os.environ.get("KGZARR_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_FOLDERS = ["selfplay7", "selfplay_mixed", "sgf7_npz", "kata19"]


def read_and_unpack(folder: Path) -> int:
    """Read every array of every npz and unpack the planes; return the rows seen."""
    rows = 0
    for path in sorted(folder.rglob("*.npz")):
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
        packed = arrays["binaryInputNCHWPacked"]
        side = int(np.sqrt(packed.shape[2] * 8))
        while (side * side + 7) // 8 != packed.shape[2]:
            side -= 1
        unpack_planes(packed, side, side)
        rows += packed.shape[0]
    return rows


def best_of(repeat: int, function, *args) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_folder(folder: Path, repeat: int) -> None:
    source_bytes = sum(path.stat().st_size for path in folder.rglob("*.npz"))
    baseline, rows = best_of(repeat, read_and_unpack, folder)

    def fresh_ingest() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            ingest(folder, os.path.join(tmp, "s.zarr"))
            return store_info(os.path.join(tmp, "s.zarr"))

    seconds, info = best_of(repeat, fresh_ingest)
    print(
        f"{folder.name:15s} rows {rows:6d}  npz {source_bytes / 1e6:6.2f} MB  store {info['bytes_on_disk'] / 1e6:6.2f} MB "
        f"({info['bytes_on_disk'] / source_bytes:.2f}x npz, {info['compression_ratio']:.1f}x raw)  "
        f"read+unpack {baseline * 1e3:7.1f} ms ({rows / baseline:8.0f} rows/s)  "
        f"ingest {seconds * 1e3:7.1f} ms ({rows / seconds:8.0f} rows/s, {seconds / baseline:.1f}x baseline)"
    )


def bench_unpack(side: int, repeat: int) -> None:
    packed = np.random.default_rng(0).integers(0, 256, (16384, 22, (side * side + 7) // 8), dtype=np.uint8)
    points = side * side
    table = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)
    variants = {
        "unpackbits(count=)": lambda: unpack_planes(packed, side, side),
        "unpackbits+slice": lambda: np.unpackbits(packed, axis=-1)[..., :points].reshape(16384, 22, side, side),
        "unpackbits+slice+copy": lambda: np.ascontiguousarray(np.unpackbits(packed, axis=-1)[..., :points]),
        "lookup table": lambda: table[packed].reshape(16384, 22, -1)[..., :points],
    }
    for name, function in variants.items():
        seconds, _ = best_of(repeat, function)
        print(f"unpack {side}x{side} 16384 rows  {name:22s} {seconds * 1e3:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="positions folders (default: the shared data folders)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    args = parser.parse_args()
    folders = args.folders or [SHARED / name for name in DEFAULT_FOLDERS]
    for folder in folders:
        bench_folder(folder, args.repeat)
    for side in (7, 19):
        bench_unpack(side, args.repeat)


if __name__ == "__main__":
    main()
