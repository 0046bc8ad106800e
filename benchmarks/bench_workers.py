"""Extraction rows/s under each Dask scheduler: threads, processes, sync and a local distributed cluster.

Usage: python benchmarks/bench_workers.py [--quick] [--rows N] [--chunk-rows N] [--repeats R]

``kgzarr.extract`` of the g170 b6c96 net (middle trunk layer) over copies of
the selfplay7 rows, with ``chunk_rows`` set so that there are four chunk
tasks, under:

- ``sync``: one task at a time, with all cores as torch threads;
- ``threads`` (the default): Dask's thread pool, 2 workers sharing the cores;
- ``processes``: Dask's process pool; every run starts new processes, and
  each loads the network from its file;
- ``distributed``: a ``distributed.LocalCluster`` of 1 or 2 worker processes
  with one Dask thread each, passed as ``scheduler=Client``. Workers keep
  the network between runs; the cluster's start-up time is listed apart.

The first run of each scheduler is an untimed warm-up, which loads the
network into the distributed workers. The table reports the median of the timed runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kgzarr.data.ingest import ingest
from kgzarr.extraction.run import extract
from kgzarr.extraction.scheduling import choose_scheduler
from kgzarr.model.network import load_model

from common import B6_MODEL, interleaved, median, print_header, print_table, replicate_positions, reset_extract, spread


def start_cluster(workers: int):  # type: ignore[no-untyped-def]
    """Start a LocalCluster of ``workers`` processes with one thread each; return (client, seconds)."""
    import logging

    from distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = Client(cluster)
    return client, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and one repeat")
    parser.add_argument("--rows", type=int, default=None, help="positions (default 4096, quick 2048)")
    parser.add_argument("--chunk-rows", type=int, default=None, help="rows per chunk task (default rows / 4)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per scheduler (default 3, quick 1)")
    args = parser.parse_args()
    rows = args.rows or (2048 if args.quick else 4096)
    chunk_rows = args.chunk_rows or max(1, rows // 4)
    repeats = args.repeats or (1 if args.quick else 3)

    print_header("Extraction under each Dask scheduler (g170 b6c96, 7x7)")
    with tempfile.TemporaryDirectory(prefix="kgzarr-bench-") as tmp:
        folder = Path(tmp)
        replicate_positions(folder / "npz", rows)
        store = folder / "positions.zarr"
        ingest(folder / "npz", store)
        net = load_model(B6_MODEL)
        layer = f"trunk_after_block{net.num_blocks // 2 - 1}"
        out = folder / "out"

        clients = {}
        startup = {}
        for workers in (1, 2):
            clients[workers], startup[workers] = start_cluster(workers)

        def runner(scheduler):  # type: ignore[no-untyped-def]
            def run() -> None:
                reset_extract(store, out)
                extract(model=net, store=store, layers=[layer], out=out, device="cpu", chunk_rows=chunk_rows, scheduler=scheduler)
            return run

        methods = {
            "sync": runner("sync"),
            "threads (default)": runner("threads"),
            "processes": runner("processes"),
            "distributed, 1 worker": runner(clients[1]),
            "distributed, 2 workers": runner(clients[2]),
        }
        try:
            seconds = interleaved(methods, repeats, warmup=True)
        finally:
            for client in clients.values():
                cluster = client.cluster
                client.close()
                cluster.close()

    schedulers = {
        "sync": "sync",
        "threads (default)": "threads",
        "processes": "processes",
    }
    base = median(seconds["threads (default)"])
    table = []
    for name, values in seconds.items():
        if name in schedulers:
            choice = choose_scheduler(schedulers[name], "cpu")
            layout = f"{choice.workers} x {choice.torch_threads}"
            start = ""
        else:
            workers = 1 if "1 worker" in name else 2
            layout = "1 x 2" if workers == 1 else "2 x 1"
            start = f"{startup[workers]:.1f}"
        table.append([name, layout, rows / median(values), f"{base / median(values):.2f}", spread(values), start])
    print(f"{rows} rows, {-(-rows // chunk_rows)} chunk tasks of {chunk_rows} rows, batch 512, {repeats} timed runs each\n")
    print_table(["scheduler", "workers x torch threads", "rows/s", "vs threads", "spread", "cluster start s"], table)


if __name__ == "__main__":
    main()
