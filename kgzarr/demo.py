"""The embedded example behind ``kgzarr demo``: generated games, a random net, ingest, extract.

It writes, under one folder:

- ``selfplay_out/demo/sgfs/games.sgfs``: random but legal 7×7 games, one SGF per line;
- ``selfplay_out/demo/tdata/*.npz``: their positions in KataGo's training-data layout,
  featurized by kgzarr's own version-7 featurizer (the same features KataGo computes);
- ``models/demo-b4c32.bin.gz``: a small KataGo-format network with seeded random weights,
  written by kgzarr's model writer;
- ``positions.zarr`` and ``activations/``: what ``kgzarr ingest`` and ``kgzarr extract`` make of them.

The random weights make the activations meaningless for research; the demo shows the
pipeline and its files, not what a trained network has learned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgzarr.data.go.board import BLACK, PASS_LOC, WHITE, Board, loc_of, opp
from kgzarr.data.sgf_source import read_sgf_positions

__all__ = ["DemoReport", "random_game_sgf", "run_demo"]

logger = logging.getLogger(__name__)

BOARD_SIZE = 7
# Rows per training file, small enough that the demo shows several files.
ROWS_PER_FILE = 128
DEMO_LAYER = "rconv2.out"
_RULES = "koSIMPLEscoreAREAtaxNONEsui0"
_MAX_MOVES = 45


@dataclass(frozen=True)
class DemoReport:
    out: Path
    games: int
    rows: int
    channels: int
    layer: str
    npy_path: Path
    value_min: float
    value_max: float

    def summary(self) -> str:
        return (
            f"demo: {self.games} games, {self.rows} positions in {self.out / 'selfplay_out'}\n"
            f"layer {self.layer}: {self.rows} rows × {self.channels} channels, values in "
            f"[{self.value_min:.3f}, {self.value_max:.3f}]\n"
            f"outputs in {self.npy_path.parent}: {self.npy_path.name}, pooled_meta.json, "
            "pos_index_to_npz.txt, pos_index.csv"
        )


def _fills_own_eye(board: Board, loc: int, pla: int) -> bool:
    # A move into a point whose four neighbours are all the mover's own stones
    # or the edge only wastes a move; random play that allows it fills its own
    # eyes and produces unrealistic, fully captured boards.
    stride = board.x_size + 1
    for neighbour in (loc - 1, loc + 1, loc - stride, loc + stride):
        color = board.colors[neighbour]
        if color != pla and board.is_on_board(neighbour):
            return False
    return True


def random_game_sgf(rng: np.random.Generator, *, size: int = BOARD_SIZE, komi: float = 7.5) -> str:
    """Play a random legal game and return it as a one-line SGF."""
    board = Board(size, size)
    moves: list[str] = []
    pla = BLACK
    consecutive_passes = 0
    num_moves = int(rng.integers(8, _MAX_MOVES))
    for _ in range(num_moves):
        candidates = [
            loc_of(x, y, size)
            for y in range(size)
            for x in range(size)
            if board.is_legal(loc_of(x, y, size), pla, False) and not _fills_own_eye(board, loc_of(x, y, size), pla)
        ]
        if not candidates or rng.random() < 0.03:
            loc = PASS_LOC
            consecutive_passes += 1
        else:
            loc = candidates[int(rng.integers(len(candidates)))]
            consecutive_passes = 0
        board.play_move_assume_legal(loc, pla)
        moves.append(_sgf_move(loc, pla, size))
        if consecutive_passes == 2:
            break
        pla = opp(pla)
    return f"(;GM[1]FF[4]SZ[{size}]KM[{komi}]RU[{_RULES}]{''.join(moves)})"


def _sgf_move(loc: int, pla: int, size: int) -> str:
    color = "B" if pla == BLACK else "W"
    if loc == PASS_LOC:
        return f";{color}[]"
    x = loc % (size + 1) - 1
    y = loc // (size + 1) - 1
    return f";{color}[{chr(ord('a') + x)}{chr(ord('a') + y)}]"


def _write_games(folder: Path, positions: int, rng: np.random.Generator) -> tuple[Path, int]:
    sgfs_path = folder / "sgfs" / "games.sgfs"
    sgfs_path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    # Each game yields one row per move; stop once enough rows are promised.
    rows = 0
    while rows < positions:
        game = random_game_sgf(rng, komi=float(rng.choice([5.5, 6.5, 7.5])))
        lines.append(game)
        rows += game.count(";") - 1
    sgfs_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sgfs_path, len(lines)


def _write_training_files(sgfs_path: Path, tdata: Path, positions: int) -> int:
    batch = read_sgf_positions(sgfs_path, pos_len=BOARD_SIZE)
    rows = min(positions, batch.num_rows)
    tdata.mkdir(parents=True, exist_ok=True)
    for index, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        stop = min(start + ROWS_PER_FILE, rows)
        arrays = {key: value[start:stop] for key, value in batch.arrays.items()}
        np.savez_compressed(tdata / f"demo-{index:04d}.npz", **arrays)
    return rows


def _write_model(path: Path, seed: int) -> None:
    from kgzarr.model.synthetic import random_model
    from kgzarr.model.writer import write_model

    desc = random_model(
        "demo-b4c32",
        num_blocks=4,
        trunk_channels=32,
        mid_channels=32,
        gpool_channels=16,
        seed=seed,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_model(desc, path)


def run_demo(
    out: str | os.PathLike[str] = "kgzarr-demo",
    *,
    positions: int = 384,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Generate the example under ``out``, then ingest and extract it; overwrite earlier demo results."""
    from kgzarr.data.ingest import ingest
    from kgzarr.extraction.run import extract

    out_path = Path(out)
    rng = np.random.default_rng(seed)
    selfplay = out_path / "selfplay_out" / "demo"
    sgfs_path, games = _write_games(selfplay, positions, rng)
    rows = _write_training_files(sgfs_path, selfplay / "tdata", positions)
    model_path = out_path / "models" / "demo-b4c32.bin.gz"
    _write_model(model_path, seed)
    logger.info("demo: wrote %d games, %d positions and a random network under %s", games, rows, out_path)

    store = out_path / "positions.zarr"
    ingest(out_path / "selfplay_out", store, rebuild=True)
    activations = out_path / "activations"
    report = extract(
        store=str(store),
        model=str(model_path),
        layers=[DEMO_LAYER],
        out=str(activations),
        overwrite=True,
        progress=progress,
    )

    npy_path = activations / f"pooled_{DEMO_LAYER}.npy"
    matrix = np.load(npy_path, mmap_mode="r")
    return DemoReport(
        out=out_path,
        games=games,
        rows=int(matrix.shape[0]),
        channels=int(matrix.shape[1]),
        layer=DEMO_LAYER,
        npy_path=npy_path,
        value_min=float(matrix.min()),
        value_max=float(matrix.max()),
    )
