"""Helpers shared by the benchmark scripts: machine description, timing, tables, test data.

Timing rule used everywhere: the methods compared in one table run in the
same process, interleaved (A, B, C, A, B, C, ...), so that load from other
programs on the machine hits every method alike. Each table reports the
median over repeats and ratios computed from those medians.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KGZARR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
B6_MODEL = SHARED_DATA / "models" / "g170-b6c96-s175395328-d26788732.bin.gz"
SELFPLAY7 = SHARED_DATA / "selfplay7"
SGF7 = SHARED_DATA / "sgf7" / "AFD4C8C7C06DFC0C.sgfs"

# KataGo's b18c384nbt layout: 18 nested bottleneck blocks, 384 trunk, 192 mid, 64 gpool channels.
B18_SHAPE = {"num_blocks": 18, "trunk_channels": 384, "mid_channels": 192, "gpool_channels": 64, "nested": True}


def machine_lines() -> list[str]:
    """Describe the CPU, the load and the versions of the libraries that the figures depend on."""
    import dask
    import torch
    import zarr

    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return [
        f"cpu: {model}, {os.cpu_count()} cores; load average (1, 5, 15 min) at start: {load}",
        f"python {platform.python_version()}, torch {torch.__version__} (intra-op threads {torch.get_num_threads()}), "
        f"numpy {np.__version__}, dask {dask.__version__}, zarr {zarr.__version__}",
    ]


def print_header(title: str) -> None:
    print(f"\n## {title}\n")
    for line in machine_lines():
        print(f"- {line}")
    print()


def interleaved(methods: dict[str, Callable[[], Any]], repeats: int, warmup: bool = True) -> dict[str, list[float]]:
    """Time each method ``repeats`` times, taking them in turn; return the seconds of every run by method.

    With ``warmup`` every method runs once untimed first (allocator, thread
    pools and caches of the first call are not what the tables measure).
    """
    if warmup:
        for action in methods.values():
            action()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, action in methods.items():
            started = time.perf_counter()
            action()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """Return the range of ``values`` relative to their median, as ``±N%``, so readers see the noise."""
    if len(values) < 2:
        return "n=1"
    middle = median(values)
    return f"±{100 * (max(values) - min(values)) / (2 * middle):.0f}%"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a Markdown table, so the output pastes into docs/benchmarks.md unchanged."""
    text_rows = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in text_rows)) for i, header in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in text_rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
    print()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def replicate_positions(dest: Path, num_rows: int, source: Path = SELFPLAY7) -> int:
    """Write copies of the source ``.npz`` files into ``dest`` holding ``num_rows`` rows in all; return the files written.

    Each copy has its rows in a different (seeded) order, so every file has
    its own SHA-256 and ingest keeps it instead of skipping it as a duplicate.
    The last file is cut short to give exactly ``num_rows`` rows.
    """
    files = sorted(source.rglob("*.npz"))
    dest.mkdir(parents=True, exist_ok=True)
    rows = 0
    written = 0
    while rows < num_rows:
        index = written % len(files)
        with np.load(files[index]) as data:
            arrays = {key: data[key] for key in data.files}
        rng = np.random.default_rng(written)
        order = rng.permutation(len(arrays["globalInputNC"]))[: num_rows - rows]
        name = f"copy{written // len(files):03d}_{files[index].name}"
        np.savez_compressed(dest / name, **{key: value[order] for key, value in arrays.items()})
        rows += len(order)
        written += 1
    return written


def write_synthetic_positions(dest: Path, num_rows: int, rows_per_file: int = 20000, side: int = 7, seed: int = 0) -> int:
    """Write ``num_rows`` random full-board positions as KataGo-layout ``.npz`` files; return the files written.

    Only the two arrays an extraction reads are written (``binaryInputNCHWPacked``
    with plane 0 all on-board, and ``globalInputNC``). The other planes hold
    random bits at density 0.1, so they compress about like real sparse planes.
    """
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    points = side * side
    written = 0
    files = 0
    while written < num_rows:
        count = min(rows_per_file, num_rows - written)
        planes = (rng.random((count, 22, points), dtype=np.float32) < 0.1).astype(np.uint8)
        planes[:, 0, :] = 1
        packed = np.packbits(planes, axis=-1)
        global_input = rng.standard_normal((count, 19), dtype=np.float32)
        np.savez_compressed(dest / f"synthetic{files:05d}.npz", binaryInputNCHWPacked=packed, globalInputNC=global_input)
        written += count
        files += 1
    return files


def write_random_net(path: Path, name: str, seed: int = 0, **shape: Any) -> Path:
    """Write a seeded random KataGo model file with :func:`kgzarr.model.synthetic.random_model`."""
    from kgzarr.model.synthetic import random_model
    from kgzarr.model.writer import write_model

    write_model(random_model(name, seed=seed, **shape), str(path), compresslevel=1)
    return path


def reset_extract(store: Path, out: Path) -> None:
    """Delete an extract's output folder and the raw pooled values it left in the store.

    ``kgzarr.extract`` keeps raw pooled values in ``<store>/activations`` and
    reuses them on the next run, which would skip the forward pass. So every
    timed extract starts from a store without them.
    """
    shutil.rmtree(store / "activations", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
