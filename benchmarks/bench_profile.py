"""Where extraction time goes, and which CPU settings change it.

Usage: python benchmarks/bench_profile.py [--quick] [--no-compile]

Tables, all on 7x7 selfplay7 rows (copies, ingested into one store) and
measured in this process:

1. Stage breakdown of one chunk task for the g170 b6c96 net and a tiny
   random net (2 blocks, 8 channels). The steps are reading and
   decompressing the store rows, unpacking the bits, converting to float32,
   the network alone, pooling, and the whole ``kgzarr.extract`` call. The tiny net shows the
   costs around the network, which a real net hides.
2. The ten torch operators with the most self CPU time in one b6c96 batch (torch.profiler).
3. Torch intra-op threads, batch size and ``channels_last`` for the plain
   b6c96 loop (``net.capture`` of the middle trunk layer).
4. ``torch.compile`` of the trunk blocks: compile time, rows/s against eager,
   and the largest difference from eager fp32 results.
5. Rows per chunk task for ``kgzarr.extract`` with the tiny net, where the
   per-task cost is not hidden by the network.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kgzarr.data.bits import unpack_planes
from kgzarr.data.ingest import ingest
from kgzarr.data.store import PositionsStore
from kgzarr.extraction.pooling import parse_pooling, pool
from kgzarr.extraction.run import extract
from kgzarr.model.network import KataGoNet, load_model
from kgzarr.model.synthetic import random_model

from common import (
    B6_MODEL,
    interleaved,
    median,
    print_header,
    print_table,
    replicate_positions,
    reset_extract,
    spread,
)

TINY_SHAPE = {"num_blocks": 2, "trunk_channels": 8, "mid_channels": 8, "gpool_channels": 8}
MEAN = parse_pooling("mean")


def capture_loop(net: KataGoNet, planes: torch.Tensor, global_input: torch.Tensor, layer: str, batch_size: int) -> None:
    for start in range(0, planes.shape[0], batch_size):
        net.capture(planes[start:start + batch_size], global_input[start:start + batch_size], [layer])


def make_store(folder: Path, rows: int) -> Path:
    """Ingest ``rows`` selfplay7 rows (copies) into ``folder/positions.zarr``, one chunk per 16384 rows."""
    replicate_positions(folder / "npz", rows)
    store = folder / "positions.zarr"
    ingest(folder / "npz", store)
    return store


def stage_table(label: str, net: KataGoNet, store: Path, repeats: int, folder: Path) -> list[list]:
    """Time each step of the chunk task of a one-chunk store; return table rows in ms per 1000 rows."""
    positions = PositionsStore(store)
    rows = positions.num_rows
    side = positions.tensor_size[0]
    layer = f"trunk_after_block{net.num_blocks // 2 - 1}"
    threads = torch.get_num_threads()
    packed = positions.read_rows(0, rows, names=("binary_input_packed",))["binary_input_packed"]
    bits = unpack_planes(packed, side, side)
    planes = torch.from_numpy(bits.astype(np.float32))
    global_input = torch.from_numpy(positions.read_rows(0, rows, names=("global_input",))["global_input"])
    captured = [net.capture(planes[s:s + 512], global_input[s:s + 512], [layer])[layer] for s in range(0, rows, 512)]
    out = folder / "stage-out"

    def run_extract() -> None:
        reset_extract(store, out)
        extract(model=net, store=store, layers=[layer], out=out, batch_size=512, device="cpu")

    def run_network() -> None:
        torch.set_num_threads(threads)
        capture_loop(net, planes, global_input, layer, 512)

    steps = {
        "read store rows (zarr, zstd)": lambda: positions.read_rows(0, rows, names=("binary_input_packed", "global_input")),
        "unpack bits": lambda: unpack_planes(packed, side, side),
        "uint8 -> float32": lambda: bits.astype(np.float32),
        "network (capture, batches of 512)": run_network,
        "pool (masked mean)": lambda: [pool(tensor, planes[i * 512:(i + 1) * 512, 0], MEAN) for i, tensor in enumerate(captured)],
        "kgzarr.extract, whole call": run_extract,
    }
    seconds = interleaved(steps, repeats, warmup=True)
    reset_extract(store, out)
    total = median(seconds["kgzarr.extract, whole call"])
    table = []
    for name, values in seconds.items():
        table.append([label, name, 1000 * 1000 * median(values) / rows, f"{100 * median(values) / total:.0f}%", spread(values)])
    parts = sum(median(values) for name, values in seconds.items() if name != "kgzarr.extract, whole call")
    table.append([label, "rest of extract (Dask, raw write, stats, output files)", 1e6 * (total - parts) / rows,
                  f"{100 * (total - parts) / total:.0f}%", ""])
    return table


def operator_table(net: KataGoNet, planes: torch.Tensor, global_input: torch.Tensor) -> list[list]:
    """Return the ten operators with the most self CPU time for one batch of the middle trunk layer."""
    from torch.profiler import ProfilerActivity, profile

    layer = f"trunk_after_block{net.num_blocks // 2 - 1}"
    net.capture(planes[:512], global_input[:512], [layer])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        net.capture(planes[:512], global_input[:512], [layer])
    events = sorted(prof.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    return [[event.key, event.count, event.self_cpu_time_total / 1000, f"{100 * event.self_cpu_time_total / total:.0f}%"]
            for event in events[:10]]


def settings_table(planes: torch.Tensor, global_input: torch.Tensor, repeats: int) -> list[list]:
    """Compare torch threads, batch sizes and channels_last on the plain b6c96 loop."""
    net = load_model(B6_MODEL)
    net_nhwc = load_model(B6_MODEL, channels_last=True)
    layer = f"trunk_after_block{net.num_blocks // 2 - 1}"
    cores = torch.get_num_threads()
    rows = planes.shape[0]

    def configured(model: KataGoNet, threads: int, batch_size: int):
        def run() -> None:
            torch.set_num_threads(threads)
            capture_loop(model, planes, global_input, layer, batch_size)
        return run

    methods = {f"threads {threads}, batch 512": configured(net, threads, 512) for threads in sorted({1, cores})}
    methods.update({f"threads {cores}, batch {size}": configured(net, cores, size) for size in (64, 128, 256, 1024, 2048)})
    methods[f"threads {cores}, batch 512, channels_last"] = configured(net_nhwc, cores, 512)
    seconds = interleaved(methods, repeats, warmup=True)
    torch.set_num_threads(cores)

    reference = f"threads {cores}, batch 512"
    base = median(seconds[reference])
    difference = (
        net_nhwc.capture(planes[:512], global_input[:512], [layer])[layer]
        - net.capture(planes[:512], global_input[:512], [layer])[layer]
    ).abs().max().item()
    table = []
    for name, values in seconds.items():
        note = f"max |diff| {difference:.1e}" if "channels_last" in name else ""
        table.append([name, rows / median(values), f"{base / median(values):.2f}", spread(values), note])
    return table


def compile_table(planes: torch.Tensor, global_input: torch.Tensor, repeats: int) -> list[list]:
    """Compare eager b6c96 against the same net with each trunk block passed through torch.compile."""
    eager = load_model(B6_MODEL)
    compiled = load_model(B6_MODEL)
    layer = f"trunk_after_block{eager.num_blocks // 2 - 1}"
    rows = planes.shape[0]
    # Only whole batches, so that the compiled blocks see one input shape.
    usable = rows - rows % 512

    started = time.perf_counter()
    for index in range(len(compiled.blocks)):
        compiled.blocks[index] = torch.compile(compiled.blocks[index])
    first = compiled.capture(planes[:512], global_input[:512], [layer])[layer]
    compile_seconds = time.perf_counter() - started
    difference = (first - eager.capture(planes[:512], global_input[:512], [layer])[layer]).abs().max().item()

    methods = {
        "eager": lambda: capture_loop(eager, planes[:usable], global_input[:usable], layer, 512),
        "torch.compile (each block)": lambda: capture_loop(compiled, planes[:usable], global_input[:usable], layer, 512),
    }
    seconds = interleaved(methods, repeats, warmup=True)
    base = median(seconds["eager"])
    return [
        ["eager", usable / base, "1.00", spread(seconds["eager"]), "", ""],
        [
            "torch.compile (each block)",
            usable / median(seconds["torch.compile (each block)"]),
            f"{base / median(seconds['torch.compile (each block)']):.2f}",
            spread(seconds["torch.compile (each block)"]),
            f"{compile_seconds:.1f}",
            f"{difference:.1e}",
        ],
    ]


def chunk_table(net: KataGoNet, store: Path, repeats: int, folder: Path) -> list[list]:
    """Time kgzarr.extract of the tiny net for several rows per chunk task."""
    positions = PositionsStore(store)
    layer = f"trunk_after_block{net.num_blocks - 1}"
    out = folder / "chunk-out"
    methods = {}
    for chunk_rows in (512, 2048, 8192, positions.num_rows):
        def run(chunk_rows: int = chunk_rows) -> None:
            reset_extract(store, out)
            extract(model=net, store=store, layers=[layer], out=out, batch_size=512, device="cpu", chunk_rows=chunk_rows)
        methods[chunk_rows] = run
    seconds = interleaved(methods, repeats, warmup=True)
    reset_extract(store, out)
    return [
        [chunk_rows, -(-positions.num_rows // chunk_rows), positions.num_rows / median(values), spread(values)]
        for chunk_rows, values in seconds.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and one repeat")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile table (about a minute of compiling)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per method (default 3, quick 1)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    store_rows = 8192 if args.quick else 16384
    b6_rows = 1024 if args.quick else 2048

    print_header("Extraction profile and CPU settings, 7x7 positions")
    with tempfile.TemporaryDirectory(prefix="kgzarr-bench-") as tmp:
        folder = Path(tmp)
        store = make_store(folder / "large", store_rows)
        small_store = make_store(folder / "small", b6_rows)
        b6 = load_model(B6_MODEL)
        tiny = KataGoNet.from_desc(random_model("random-b2c8", **TINY_SHAPE))

        print(f"### Stage breakdown of one chunk task (ms per 1000 rows; b6c96 on {b6_rows} rows, tiny net on {store_rows})\n")
        rows = stage_table("g170 b6c96", b6, small_store, repeats, folder)
        rows += stage_table("random b2c8", tiny, store, repeats, folder)
        print_table(["network", "step", "ms / 1000 rows", "share of extract", "spread"], rows)

        positions = PositionsStore(small_store)
        packed = positions.read_rows(0, b6_rows, names=("binary_input_packed", "global_input"))
        planes = torch.from_numpy(unpack_planes(packed["binary_input_packed"], 7, 7).astype(np.float32))
        global_input = torch.from_numpy(packed["global_input"])

        print("### Top operators, one batch of 512 rows, g170 b6c96 up to the middle trunk layer (torch.profiler)\n")
        print_table(["operator", "calls", "self CPU ms", "share"], operator_table(b6, planes, global_input))

        print(f"### Torch threads, batch size and channels_last (g170 b6c96, middle trunk layer, {b6_rows} rows)\n")
        print_table(["setting", "rows/s", "speed vs default", "spread", "note"], settings_table(planes, global_input, repeats))

        if not args.no_compile:
            print(f"### torch.compile of the trunk blocks (g170 b6c96, middle trunk layer, {b6_rows} rows, batch 512)\n")
            print_table(["mode", "rows/s", "speed vs eager", "spread", "compile s", "max |diff| vs eager"],
                        compile_table(planes, global_input, repeats))

        print(f"### Rows per chunk task (kgzarr.extract, random b2c8, last trunk layer, {store_rows} rows)\n")
        print_table(["chunk rows", "tasks", "rows/s", "spread"], chunk_table(tiny, store, repeats, folder))


if __name__ == "__main__":
    main()
