"""Run every benchmark script one after the other and print their tables.

Usage: python benchmarks/run_all.py [--quick] [--only NAME[,NAME...]]

Each script runs in its own process (so one script's threads, caches and
memory do not affect the next). ``--quick`` passes the scripts' quick
settings: about 10 minutes in all on a 2-core machine, against about 35 for
the full settings. ``bench_ingest.py`` gets the selfplay7 folder and a
20,000-row copy of it. In quick mode ``bench_model_load.py`` gets one run and
``bench_sgf.py`` one run with 20 random 19x19 games.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SELFPLAY7, SHARED_DATA, replicate_positions

HERE = Path(__file__).resolve().parent
ORDER = ("extract", "profile", "workers", "scaling", "ingest", "model_load", "sgf")


def command_for(name: str, quick: bool, tmp: Path) -> list[str]:
    script = [sys.executable, str(HERE / f"bench_{name}.py")]
    if name == "ingest":
        copies = tmp / "selfplay7-20000"
        if not copies.exists():
            replicate_positions(copies, 20000)
        folders = [str(SELFPLAY7), str(copies)]
        if not quick:
            folders += [str(SHARED_DATA / name) for name in ("selfplay_mixed", "sgf7_npz", "kata19")]
        return [*script, *folders, "--repeat", "1" if quick else "3"]
    if name == "model_load":
        return [*script, "--runs", "1" if quick else "3", "--folder", str(tmp)]
    if name == "sgf":
        return [*script, "--repeat", "1", "--games19", "20"] if quick else script
    return [*script, "--quick"] if quick else script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each script's quick settings")
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {', '.join(ORDER)}")
    args = parser.parse_args()
    names = [name for name in ORDER if name in args.only.split(",")]

    failed = []
    with tempfile.TemporaryDirectory(prefix="kgzarr-bench-") as tmp:
        for name in names:
            command = command_for(name, args.quick, Path(tmp))
            print(f"\n# bench_{name}.py\n", flush=True)
            started = time.perf_counter()
            result = subprocess.run(command, check=False)
            print(f"(bench_{name}.py took {time.perf_counter() - started:.0f} s, exit status {result.returncode})", flush=True)
            if result.returncode != 0:
                failed.append(name)
    if failed:
        sys.exit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
