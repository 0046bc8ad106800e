"""Fixtures for the positions-store tests: small KataGo-format .npz files built inline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from positions_factory import synthetic_arrays


@pytest.fixture
def write_npz() -> Callable[..., Path]:
    """Return a function that writes arrays as a compressed npz, the way KataGo's writer does."""

    def write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path

    return write


@pytest.fixture
def make_folder(write_npz: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    """Return a function that writes ``len(rows)`` synthetic npz files into a new folder."""

    def make(rows: list[int], name: str = "positions", side: int = 7) -> Path:
        folder = tmp_path / name
        for index, count in enumerate(rows):
            write_npz(folder / "tdata" / f"file{index:02d}.npz", synthetic_arrays(count, side, seed=index))
        return folder

    return make
