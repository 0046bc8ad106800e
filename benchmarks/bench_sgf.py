"""Measure how many positions per second ``read_sgf_positions`` featurizes, serially and with Dask.

Usage: python benchmarks/bench_sgf.py [--repeat N] [--workers N] [--games19 N] [--compile-time]

Inputs:
- 7x7: the 1000 self-play games of sgf7/AFD4C8C7C06DFC0C.sgfs under $KGZARR_SHARED_DATA or
  ../shared/data, at pos_len 7;
- 19x19: ``--games19`` games of random legal moves (200 moves each, seeded, so every run gets the same
  games), written to a temporary .sgfs file, at pos_len 19. Random play has more captures and
  ataris, so more ladder searches, than real games.

For each input it prints the median over ``--repeat`` runs, taken in turn after one untimed run
each, of: the SGF parse alone (the baseline, ``read_sgf_games``), the serial featurizer, and Dask's
``processes`` scheduler with ``--workers`` workers (pool start-up included). ``--compile-time``
also times the first featurization in a fresh process with an empty numba cache, which is what a
fresh checkout pays once.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from common import SGF7, interleaved, median, print_header, print_table, spread

from kgzarr.data.go.board import BLACK, EMPTY, PASS_LOC, Board, loc_of
from kgzarr.data.go.history import BoardHistory
from kgzarr.data.go.rules import parse_rules
from kgzarr.data.sgf import move_to_sgf, read_sgf_games
from kgzarr.data.sgf_source import read_sgf_positions

MOVES_PER_RANDOM_GAME = 200


def random_game(rng: random.Random, size: int) -> str:
    """Return one SGF game of random legal moves under Tromp-Taylor rules, ending early at a pass."""
    board = Board(size, size)
    hist = BoardHistory(board, BLACK, parse_rules("tromp-taylor"))
    moves = []
    pla = BLACK
    for _ in range(MOVES_PER_RANDOM_GAME):
        empty = [(x, y) for y in range(size) for x in range(size) if board.colors[loc_of(x, y, size)] == EMPTY]
        rng.shuffle(empty)
        legal = next((p for p in empty[:20] if hist.is_legal(board, loc_of(*p, size), pla)), None)
        loc = PASS_LOC if legal is None else loc_of(*legal, size)
        hist.make_board_move_assume_legal(board, loc, pla)
        moves.append(";{}[{}]".format("B" if pla == BLACK else "W", "" if legal is None else move_to_sgf(*legal)))
        if legal is None:
            break
        pla = 3 - pla
    return f"(;GM[1]SZ[{size}]RU[tromp-taylor]KM[7.5]{''.join(moves)})"


def write_random_games(path: Path, count: int, size: int) -> Path:
    rng = random.Random(19)
    path.write_text("\n".join(random_game(rng, size) for _ in range(count)) + "\n", encoding="utf-8")
    return path


def bench_file(label: str, path: Path, pos_len: int, repeat: int, workers: int) -> None:
    rows = read_sgf_positions(path, pos_len=pos_len).num_rows
    methods = {
        "parse only (baseline)": lambda: list(read_sgf_games(path)),
        "serial": lambda: read_sgf_positions(path, pos_len=pos_len),
        f"dask processes, {workers} workers": lambda: read_sgf_positions(
            path, pos_len=pos_len, scheduler="processes", num_workers=workers
        ),
    }
    seconds = interleaved(methods, repeat)
    print_header(f"{label}: {path.name}, {rows:,} positions, pos_len {pos_len}, median of {repeat}")
    table = [(name, median(times), spread(times), rows / median(times)) for name, times in seconds.items()]
    print_table(["method", "seconds", "spread", "positions/s"], table)


def compile_seconds() -> float:
    """Return the seconds a fresh process with an empty numba cache takes to featurize one game."""
    code = (
        "import time; t = time.perf_counter();"
        "from kgzarr.data.sgf_source import read_sgf_positions;"
        f"read_sgf_positions({str(SGF7)!r}, pos_len=7, positions='moves:0-0');"
        "print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        output = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is printed")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Dask worker processes")
    parser.add_argument("--games19", type=int, default=100, help="random 19x19 games to generate")
    parser.add_argument("--compile-time", action="store_true", help="also time compiling with an empty numba cache")
    args = parser.parse_args()

    if args.compile_time:
        print(f"first game with an empty numba cache: {compile_seconds():.1f} s")
    bench_file("7x7 self-play", SGF7, 7, args.repeat, args.workers)
    with tempfile.TemporaryDirectory() as folder:
        path = write_random_games(Path(folder) / "random19.sgfs", args.games19, 19)
        bench_file("19x19 random play", path, 19, args.repeat, args.workers)


if __name__ == "__main__":
    main()
