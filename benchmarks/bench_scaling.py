"""Ingest and extraction time and peak memory against the number of positions N.

Usage: python benchmarks/bench_scaling.py [--quick] [--sizes 10000,100000,1000000]

For each N, random full-board 7x7 positions are written as KataGo-layout
``.npz`` files of 20,000 rows (untimed). Then two child processes run one
after the other. The first runs ``kgzarr.ingest`` of the files into a new
store, and the second ``kgzarr.extract`` of a tiny random net (2 blocks,
8 channels, last trunk layer) over the store with the default settings. Each child reports its
wall time and its peak resident set size (``ru_maxrss``, which includes the
interpreter, torch and the other imports; the table shows that floor too).
A tiny net keeps the forward pass cheap, so the table shows how the rest of
kgzarr scales. Time should grow linearly with N and memory should stay flat.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_header, print_table, write_random_net, write_synthetic_positions

TINY_SHAPE = {"num_blocks": 2, "trunk_channels": 8, "mid_channels": 8, "gpool_channels": 8}
LAYER = "trunk_after_block1"


def run_child(phase: str, folder: Path, model: Path) -> None:
    """Run one phase in this process and print its seconds and memory as JSON."""
    import psutil

    import kgzarr.data.ingest
    import kgzarr.extraction.run

    floor = psutil.Process().memory_info().rss
    started = time.perf_counter()
    if phase == "ingest":
        report = kgzarr.data.ingest.ingest(folder / "npz", folder / "positions.zarr")
        rows = report.rows_added
    else:
        report = kgzarr.extraction.run.extract(
            model=model, store=folder / "positions.zarr", layers=[LAYER], out=folder / "out", device="cpu"
        )
        rows = report.rows
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_bytes": peak, "floor_bytes": floor}))


def measure(phase: str, folder: Path, model: Path) -> dict:
    command = [sys.executable, __file__, "--child", phase, "--folder", str(folder), "--model", str(model)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{phase} child failed for {folder}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10^4 and 10^5 only")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 10000,100000,1000000)")
    parser.add_argument("--child", choices=("ingest", "extract"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.folder, args.model)
        return

    default = "10000,100000" if args.quick else "10000,100000,1000000"
    sizes = [int(text) for text in (args.sizes or default).split(",")]
    print_header("Scaling with the number of positions (random b2c8 net, 7x7)")

    table = []
    base: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kgzarr-bench-") as tmp:
        model = write_random_net(Path(tmp) / "b2c8.bin.gz", "random-b2c8", **TINY_SHAPE)
        for size in sizes:
            folder = Path(tmp) / f"n{size}"
            write_synthetic_positions(folder / "npz", size)
            npz_bytes = sum(path.stat().st_size for path in (folder / "npz").glob("*.npz"))
            ingest = measure("ingest", folder, model)
            extract = measure("extract", folder, model)
            per_row = {"ingest": ingest["seconds"] / size, "extract": extract["seconds"] / size}
            base = base or per_row
            table.append([
                size,
                f"{npz_bytes / 1e6:.0f} MB",
                ingest["seconds"],
                size / ingest["seconds"],
                f"{per_row['ingest'] / base['ingest']:.2f}",
                f"{ingest['peak_bytes'] / 2**20:.0f} MiB",
                extract["seconds"],
                size / extract["seconds"],
                f"{per_row['extract'] / base['extract']:.2f}",
                f"{extract['peak_bytes'] / 2**20:.0f} MiB",
                f"{extract['floor_bytes'] / 2**20:.0f} MiB",
            ])

    print_table(
        [
            "N",
            "npz size",
            "ingest s",
            "ingest rows/s",
            "ingest s/row vs first N",
            "ingest peak RSS",
            "extract s",
            "extract rows/s",
            "extract s/row vs first N",
            "extract peak RSS",
            "RSS after imports",
        ],
        table,
    )


if __name__ == "__main__":
    main()
