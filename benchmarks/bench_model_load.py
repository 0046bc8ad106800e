"""Time read_model on a b28c512nbt-sized random net against plain gzip decompression.

Usage: python benchmarks/bench_model_load.py [--blocks 28 --trunk 512 --mid 256 --gpool 64] [--folder DIR]

Writes a random nested-bottleneck net (KataGo's b28c512nbt layout by default)
with kgzarr's writer, then reports the best of three runs of
``gzip.decompress`` on the file and of ``read_model`` on it, and their ratio.
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time

from kgzarr.model.reader import read_model
from kgzarr.model.synthetic import model_summary, random_model
from kgzarr.model.writer import write_model


def best_of(runs: int, action) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=28, help="top-level nested bottleneck blocks")
    parser.add_argument("--trunk", type=int, default=512, help="trunk channels")
    parser.add_argument("--mid", type=int, default=256, help="bottleneck (mid) channels")
    parser.add_argument("--gpool", type=int, default=64, help="global pooling channels")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each step; the best is reported")
    parser.add_argument("--folder", default=None, help="folder for the temporary model file (default: system temp)")
    args = parser.parse_args()

    desc = random_model(
        f"bench-b{args.blocks}c{args.trunk}nbt",
        num_blocks=args.blocks,
        trunk_channels=args.trunk,
        mid_channels=args.mid,
        gpool_channels=args.gpool,
        nested=True,
    )
    summary = model_summary(desc)
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = os.path.join(folder, "bench.bin.gz")
        started = time.perf_counter()
        write_model(desc, path, compresslevel=1)
        write_seconds = time.perf_counter() - started
        del desc
        with open(path, "rb") as stream:
            raw = stream.read()
        uncompressed = len(gzip.decompress(raw))

        gunzip_seconds = best_of(args.runs, lambda: gzip.decompress(raw))
        read_seconds = best_of(args.runs, lambda: read_model(path))

    print(f"net: {summary['name']}, {summary['parameters']:,} parameters")
    print(f"file: {len(raw) / 1e6:.1f} MB gzipped, {uncompressed / 1e6:.1f} MB uncompressed (written in {write_seconds:.1f} s)")
    print(f"gzip.decompress: {gunzip_seconds:.2f} s")
    print(f"read_model:      {read_seconds:.2f} s")
    print(f"ratio read_model / gzip.decompress: {read_seconds / gunzip_seconds:.2f}")


if __name__ == "__main__":
    main()
