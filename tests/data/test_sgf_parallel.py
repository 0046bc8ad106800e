"""Featurizing SGF games as Dask tasks gives the rows of the serial read, in the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgzarr.data.sgf_source import SgfBatch, read_sgf_positions
from kgzarr.errors import ConfigError, SgfError

SGF7 = Path("sgf7") / "AFD4C8C7C06DFC0C.sgfs"


def _assert_batches_equal(parallel: SgfBatch, serial: SgfBatch) -> None:
    assert parallel.arrays.keys() == serial.arrays.keys()
    for key, array in serial.arrays.items():
        assert parallel.arrays[key].dtype == array.dtype, key
        assert np.array_equal(parallel.arrays[key], array), key
    assert parallel.coords.keys() == serial.coords.keys()
    for key, array in serial.coords.items():
        assert parallel.coords[key].dtype == array.dtype, key
        assert np.array_equal(parallel.coords[key], array), key
    assert parallel.rejected == serial.rejected


def _write_games(folder: Path) -> Path:
    """Write a folder with an .sgfs file (a bad game in the middle), a file with variations and a plain game."""
    folder.mkdir()
    lines = [
        "(;SZ[5]KM[0.5];B[aa];W[bb];B[cc])",
        "(;SZ[5];B[aa];W[aa])",
        "(;SZ[5]RU[Japanese];B[cc];W[];B[];W[dd])",
        "(;SZ[5];B[ab];W[ba];B[bb])",
    ]
    (folder / "a.sgfs").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "b.sgf").write_text("(;SZ[5];B[cc](;W[dd];B[de])(;W[bc]))", encoding="utf-8")
    (folder / "c.sgf").write_text("(;SZ[5]AB[aa][bb];W[cc];B[dd])", encoding="utf-8")
    return folder


@pytest.mark.parametrize("games_per_task", [1, 2, 100])
def test_sync_scheduler_equals_serial(tmp_path: Path, games_per_task: int) -> None:
    """Task boundaries inside a file must not change game indices, row order or the rejected games."""
    folder = _write_games(tmp_path / "games")
    serial = read_sgf_positions(folder, pos_len=5, skip_bad=True)
    parallel = read_sgf_positions(
        folder, pos_len=5, skip_bad=True, scheduler="synchronous", games_per_task=games_per_task
    )
    _assert_batches_equal(parallel, serial)
    assert [index for _, index, _, _ in parallel.rejected] == [1]
    assert parallel.coords["game_index"].tolist()[-7:] == [0, 0, 0, 1, 1, 0, 0]


def test_parallel_raises_first_bad_game(tmp_path: Path) -> None:
    """Without skip_bad the error names the first bad game in file order, whichever task finishes first."""
    folder = _write_games(tmp_path / "games")
    with pytest.raises(SgfError, match=r"a\.sgfs, game 1, move 1"):
        read_sgf_positions(folder, pos_len=5, scheduler="threads", num_workers=2, games_per_task=1)


def test_invalid_games_per_task_raises(tmp_path: Path) -> None:
    folder = _write_games(tmp_path / "games")
    with pytest.raises(ConfigError, match="games_per_task"):
        read_sgf_positions(folder, pos_len=5, scheduler="synchronous", games_per_task=0)


@pytest.mark.shared
@pytest.mark.slow
def test_processes_equal_serial_on_selfplay(shared_data: Path) -> None:
    """Worker processes give the serial rows for 300 self-play games with every third position."""
    path = shared_data / SGF7
    serial = read_sgf_positions(path, pos_len=7, positions="every:3")
    parallel = read_sgf_positions(
        path, pos_len=7, positions="every:3", scheduler="processes", num_workers=2, games_per_task=97
    )
    _assert_batches_equal(parallel, serial)
