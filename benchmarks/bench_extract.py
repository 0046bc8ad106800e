"""Extraction throughput on 7x7 positions: kgzarr against the bare network and the step-3 loop.

Usage: python benchmarks/bench_extract.py [--quick] [--nets b6,b18] [--rows N] [--b18-rows N] [--repeats R]

The networks are the real g170 b6c96 net and a seeded random net of
KataGo's b18c384nbt shape. For each, and for two layers (the trunk after
the middle block, and after the last block), four methods run on the same
rows in the same process, interleaved:

- ``ceiling``: a plain loop of ``net.capture(layer)`` over batches of
  float32 tensors unpacked before timing; the network stops after the
  layer's block. No reading, no pooling, no Dask.
- ``full pass``: the same loop, but capturing the layer and every head
  output, so every block and both heads run (what the step-3 script computed).
- ``kgzarr``: ``kgzarr.extract`` from the positions store, with its default
  scheduler and settings (mean pooling, shift and max scaling, output files).
- ``step-3 loop``: the re-implementation in ``step3_loop.py``, reading the
  same rows from their ``.npz`` files.

The positions are copies of the selfplay7 files (rows reordered per copy),
ingested once before timing; ingest is measured by ``bench_ingest.py``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from kgzarr.data.bits import unpack_planes
from kgzarr.data.ingest import ingest
from kgzarr.data.store import PositionsStore
from kgzarr.extraction.run import extract
from kgzarr.extraction.scheduling import choose_scheduler
from kgzarr.model.names import HEAD_OUTPUTS
from kgzarr.model.network import KataGoNet, load_model
from kgzarr.model.synthetic import random_model

from common import (
    B6_MODEL,
    B18_SHAPE,
    interleaved,
    median,
    print_header,
    print_table,
    replicate_positions,
    reset_extract,
    spread,
)
from step3_loop import run_step3_loop

BATCH_SIZE = 512


def prepare_positions(folder: Path, num_rows: int) -> tuple[Path, list[Path]]:
    """Write ``num_rows`` selfplay7 rows as npz copies and ingest them; return the store and the files."""
    replicate_positions(folder / "npz", num_rows)
    store = folder / "positions.zarr"
    ingest(folder / "npz", store)
    return store, sorted((folder / "npz").rglob("*.npz"))


def load_inputs(store: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Return every store row as float32 (N, 22, L, L) planes and (N, 19) global inputs."""
    positions = PositionsStore(store)
    rows = positions.read_rows(0, positions.num_rows, names=("binary_input_packed", "global_input"))
    height, width = positions.tensor_size
    planes = unpack_planes(rows["binary_input_packed"], height, width).astype(np.float32)
    return torch.from_numpy(planes), torch.from_numpy(np.ascontiguousarray(rows["global_input"], dtype=np.float32))


def plain_loop(net: KataGoNet, planes: torch.Tensor, global_input: torch.Tensor, layers: list[str], threads: int) -> None:
    """Run ``net.capture(layers)`` over the inputs in batches of BATCH_SIZE, with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    for start in range(0, planes.shape[0], BATCH_SIZE):
        net.capture(planes[start:start + BATCH_SIZE], global_input[start:start + BATCH_SIZE], layers)


def bench_network(label: str, net: KataGoNet, folder: Path, num_rows: int, repeats: int, threads: int) -> list[list]:
    """Time the four methods for the middle and the last trunk layer of ``net``; return table rows."""
    store, files = prepare_positions(folder, num_rows)
    planes, global_input = load_inputs(store)
    side = planes.shape[2]
    out = folder / "out"
    plain_loop(net, planes[:BATCH_SIZE], global_input[:BATCH_SIZE], [f"trunk_after_block{net.num_blocks - 1}"], threads)

    table = []
    for block in (net.num_blocks // 2 - 1, net.num_blocks - 1):
        layer = f"trunk_after_block{block}"

        def run_kgzarr() -> None:
            reset_extract(store, out)
            extract(model=net, store=store, layers=[layer], out=out, batch_size=BATCH_SIZE, device="cpu")

        methods = {
            "ceiling": lambda: plain_loop(net, planes, global_input, [layer], threads),
            "full pass": lambda: plain_loop(net, planes, global_input, [layer, *HEAD_OUTPUTS], threads),
            "kgzarr": run_kgzarr,
            "step-3 loop": lambda: run_step3_loop(net, files, layer, BATCH_SIZE, side),
        }
        seconds = interleaved(methods, repeats, warmup=False)
        rates = {name: num_rows / median(values) for name, values in seconds.items()}
        table.append([
            label,
            f"{layer} ({block + 1}/{net.num_blocks} blocks)",
            rates["ceiling"],
            rates["full pass"],
            rates["kgzarr"],
            rates["step-3 loop"],
            f"{rates['kgzarr'] / rates['ceiling']:.2f}",
            f"{rates['kgzarr'] / rates['step-3 loop']:.2f}",
            f"{rates['ceiling'] / rates['full pass']:.2f}",
            " ".join(spread(values) for values in seconds.values()),
        ])
        reset_extract(store, out)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and one repeat (about 2 minutes)")
    parser.add_argument("--nets", default="b6,b18", help="comma-separated networks to run: b6 (real g170 b6c96), b18 (random b18c384nbt)")
    parser.add_argument("--rows", type=int, default=None, help="positions for the b6c96 net (default 4096, quick 2048)")
    parser.add_argument("--b18-rows", type=int, default=None, help="positions for the b18 net (default 256, quick 128)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per method; the median is reported (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the plain loops (default: all cores)")
    args = parser.parse_args()

    repeats = args.repeats or (1 if args.quick else 3)
    b6_rows = args.rows or (2048 if args.quick else 4096)
    b18_rows = args.b18_rows or (128 if args.quick else 256)
    threads = args.threads or torch.get_num_threads()
    choice = choose_scheduler(None, "cpu")

    print_header("Extraction throughput, 7x7 positions")
    print(
        f"batch size {BATCH_SIZE}; plain loops use {threads} torch threads; kgzarr uses its default scheduler "
        f"({choice.name}, {choice.workers} workers x {choice.torch_threads} torch threads when there are enough chunks, "
        f"all cores for a single chunk); {repeats} repeats, rates from the median time; step-3 loop pools a 3x3 grid, "
        "kgzarr the board mean\n"
    )

    table = []
    with tempfile.TemporaryDirectory(prefix="kgzarr-bench-") as tmp:
        if "b6" in args.nets:
            net = load_model(B6_MODEL)
            table += bench_network(f"g170 b6c96, {b6_rows} rows", net, Path(tmp) / "b6", b6_rows, repeats, threads)
        if "b18" in args.nets:
            net = KataGoNet.from_desc(random_model("random-b18c384nbt", **B18_SHAPE))
            table += bench_network(f"random b18c384nbt, {b18_rows} rows", net, Path(tmp) / "b18", b18_rows, repeats, threads)

    print_table(
        [
            "network",
            "layer",
            "ceiling rows/s",
            "full pass rows/s",
            "kgzarr rows/s",
            "step-3 loop rows/s",
            "kgzarr / ceiling",
            "kgzarr / step-3",
            "truncation gain",
            "spread (per method)",
        ],
        table,
    )
    print("truncation gain: ceiling rows/s over full-pass rows/s (same plain loop, stopping after the layer's block "
          "instead of running every block and both heads)")


if __name__ == "__main__":
    main()
