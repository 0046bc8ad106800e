"""On-board pooling of layer tensors, checked against per-position numpy loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgzarr.errors import ConfigError
from kgzarr.extraction.pooling import Pooling, check_grid_fits, parse_pooling, pool


def _boards(rng: np.random.Generator, n: int, size: int, smallest: int) -> tuple[np.ndarray, np.ndarray]:
    board_x = rng.integers(smallest, size + 1, n)
    board_y = rng.integers(smallest, size + 1, n)
    return board_x, board_y


def _mask(board_x: np.ndarray, board_y: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros((len(board_x), 1, size, size), dtype=np.float32)
    for n, (bx, by) in enumerate(zip(board_x, board_y)):
        mask[n, 0, :by, :bx] = 1
    return mask


def _activations(rng: np.random.Generator, n: int, channels: int, size: int) -> np.ndarray:
    # Large off-board values make any leak of off-board points visible.
    values = rng.normal(size=(n, channels, size, size)).astype(np.float32)
    values[:, :, -1, :] += 100.0
    return values


def _bins(length: int, k: int) -> list[tuple[int, int]]:
    step = length // k
    return [(i * step, (i + 1) * step if i < k - 1 else length) for i in range(k)]


def _reference(values: np.ndarray, board_x: np.ndarray, board_y: np.ndarray, pooling: Pooling) -> np.ndarray:
    rows = []
    for n in range(values.shape[0]):
        board = values[n, :, : board_y[n], : board_x[n]].astype(np.float64)
        if pooling.kind == "mean":
            rows.append(board.mean(axis=(1, 2)))
        elif pooling.kind == "max":
            rows.append(board.max(axis=(1, 2)))
        elif pooling.kind == "mean-max":
            rows.append(np.concatenate([board.mean(axis=(1, 2)), board.max(axis=(1, 2))]))
        else:
            parts = [
                board[:, r0:r1, c0:c1].mean(axis=(1, 2))
                for r0, r1 in _bins(int(board_y[n]), pooling.grid_size)
                for c0, c1 in _bins(int(board_x[n]), pooling.grid_size)
            ]
            rows.append(np.concatenate(parts))
    return np.stack(rows)


@pytest.mark.parametrize("text", ["mean", "max", "mean-max", "grid:1", "grid:3", "grid:4"])
def test_pool_matches_numpy(text: str) -> None:
    rng = np.random.default_rng(7)
    pooling = parse_pooling(text)
    board_x, board_y = _boards(rng, 40, 9, max(pooling.grid_size, 2))
    values = _activations(rng, 40, 5, 9)

    pooled = pool(torch.from_numpy(values), torch.from_numpy(_mask(board_x, board_y, 9)), pooling).numpy()

    expected = _reference(values, board_x, board_y, pooling)
    assert pooled.dtype == np.float32
    assert pooled.shape == (40, pooling.columns(5))
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_grid3_full_board_matches_step3_rule() -> None:
    """Pins the region layout the 3×3 NMF tooling expects: region-major, step H//3, last bin to the edge."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 4, 7, 7)).astype(np.float32)
    mask = np.ones((3, 1, 7, 7), dtype=np.float32)

    pooled = pool(torch.from_numpy(values), torch.from_numpy(mask), parse_pooling("grid:3")).numpy()

    edges = [(0, 2), (2, 4), (4, 7)]
    expected = np.concatenate([values[:, :, r0:r1, c0:c1].mean(axis=(2, 3)) for r0, r1 in edges for c0, c1 in edges], axis=1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_max_ignores_off_board() -> None:
    values = np.full((1, 2, 5, 5), 50.0, dtype=np.float32)
    values[0, :, :3, :3] = -1.0
    mask = _mask(np.array([3]), np.array([3]), 5)

    pooled = pool(torch.from_numpy(values), torch.from_numpy(mask), parse_pooling("max")).numpy()

    assert pooled.tolist() == [[-1.0, -1.0]]


def test_pool_accepts_3d_mask() -> None:
    values = torch.ones(2, 3, 4, 4)
    mask = torch.ones(2, 4, 4)

    pooled = pool(values, mask, parse_pooling("mean"))

    assert pooled.shape == (2, 3)


@pytest.mark.parametrize("text", ["avg", "grid:0", "grid:", "grid:x", "Mean"])
def test_parse_pooling_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid pooling"):
        parse_pooling(text)


def test_grid_labels_region_major() -> None:
    pooling = parse_pooling("grid:2")

    assert pooling.part_labels() == ["r0c0", "r0c1", "r1c0", "r1c1"]
    assert pooling.name == "grid:2"


def test_grid_rejects_small_board() -> None:
    values = torch.zeros(1, 2, 7, 7)
    mask = torch.from_numpy(_mask(np.array([7]), np.array([2]), 7))

    with pytest.raises(ConfigError, match="no on-board point"):
        pool(values, mask, parse_pooling("grid:3"))


def test_check_grid_fits_names_position() -> None:
    with pytest.raises(ConfigError, match="position 2, board 5×2"):
        check_grid_fits(parse_pooling("grid:3"), np.array([7, 7, 5]), np.array([7, 3, 2]))


def test_check_grid_fits_passes_big_boards() -> None:
    check_grid_fits(parse_pooling("grid:3"), np.array([3, 19]), np.array([3, 19]))
