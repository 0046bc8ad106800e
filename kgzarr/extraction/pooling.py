"""Pool (N, C, H, W) layer tensors into (N, columns) over on-board points only.

Pooling modes and their column layouts:

- ``mean``: C columns, the mean of each channel over the on-board points.
- ``max``: C columns, the maximum of each channel over the on-board points.
- ``mean-max``: 2C columns, all C means first, then all C maxima.
- ``grid:K``: K*K*C columns, the on-board mean of each channel inside each of
  K×K board regions, region-major: column ``region * C + channel`` with
  ``region = row_bin * K + column_bin``. This is the layout the 3×3-region NMF
  tooling of the ai_go_explain pipeline reads.

Grid regions: each axis of the on-board area (``board_x`` columns,
``board_y`` rows, which KataGo places in the top-left corner of the tensor) is
cut into K bins of ``length // K`` points, and the last bin runs to the edge of
the board. A 7-point axis with K=3 gives bins of 2, 2 and 3 points. A board
shorter than K on either axis would leave a region with no point, so
:func:`check_grid_fits` raises :class:`~kgzarr.errors.ConfigError` for it
instead of inventing a value.

Off-board points never count, even where a layer is not masked by the network
(KataGo's ``trunk_after_embedding`` is one such layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from kgzarr.errors import ConfigError

__all__ = ["Pooling", "parse_pooling", "pool", "check_grid_fits", "POOLING_CHOICES"]

POOLING_CHOICES = ("mean", "max", "mean-max", "grid:K")

_GRID_PATTERN = re.compile(r"grid:(\d+)")


@dataclass(frozen=True)
class Pooling:
    """A parsed pooling mode: ``kind`` is mean, max, mean-max or grid."""

    kind: str
    grid_size: int = 0

    @property
    def name(self) -> str:
        """The mode as written on the command line (``grid:3``)."""
        return f"grid:{self.grid_size}" if self.kind == "grid" else self.kind

    @property
    def parts(self) -> int:
        """Number of pooled columns per layer channel."""
        if self.kind == "mean-max":
            return 2
        if self.kind == "grid":
            return self.grid_size * self.grid_size
        return 1

    def part_labels(self) -> list[str]:
        """Label of each block of C columns, in column order (``mean``, ``r0c2``)."""
        if self.kind == "mean-max":
            return ["mean", "max"]
        if self.kind == "grid":
            k = self.grid_size
            return [f"r{row}c{col}" for row in range(k) for col in range(k)]
        return [self.kind]

    def columns(self, channels: int) -> int:
        return self.parts * channels


def parse_pooling(text: str | Pooling) -> Pooling:
    """Parse ``mean``, ``max``, ``mean-max`` or ``grid:K`` (K >= 1)."""
    if isinstance(text, Pooling):
        return text
    if text in ("mean", "max", "mean-max"):
        return Pooling(text)

    match = _GRID_PATTERN.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"invalid pooling {text!r}; use one of mean, max, mean-max or grid:K with K a positive integer (grid:3)"
        )
    return Pooling("grid", int(match.group(1)))


def check_grid_fits(pooling: Pooling, board_x: np.ndarray, board_y: np.ndarray) -> None:
    """Raise ConfigError when a board is too small for every grid region to hold a point."""
    if pooling.kind != "grid" or len(board_x) == 0:
        return

    too_small = np.flatnonzero((board_x < pooling.grid_size) | (board_y < pooling.grid_size))
    if too_small.size:
        first = int(too_small[0])
        raise ConfigError(
            f"pooling {pooling.name} needs boards of at least {pooling.grid_size}×{pooling.grid_size} points, "
            f"but {too_small.size} positions are smaller (the first is position {first}, "
            f"board {int(board_x[first])}×{int(board_y[first])}); use a smaller K or pooling mean"
        )


def pool(activations: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Pool a layer tensor over on-board points.

    ``activations`` is (N, C, H, W); ``mask`` is (N, 1, H, W) or (N, H, W) with
    1 on the board and 0 off it (input plane 0). Returns float32
    (N, pooling.columns(C)) on the device of ``activations``.
    """
    values = activations.float()
    on_board = mask.reshape(values.shape[0], 1, values.shape[2], values.shape[3]).to(values.dtype)

    if pooling.kind == "mean":
        return _masked_mean(values, on_board)
    if pooling.kind == "max":
        return _masked_max(values, on_board)
    if pooling.kind == "mean-max":
        return torch.cat([_masked_mean(values, on_board), _masked_max(values, on_board)], dim=1)
    return _grid_mean(values, on_board, pooling.grid_size)


def _masked_mean(values: torch.Tensor, on_board: torch.Tensor) -> torch.Tensor:
    sums = (values * on_board).sum(dim=(2, 3))
    counts = on_board.sum(dim=(2, 3))
    return sums / counts


def _masked_max(values: torch.Tensor, on_board: torch.Tensor) -> torch.Tensor:
    off_board = on_board == 0
    return values.masked_fill(off_board, float("-inf")).amax(dim=(2, 3))


def _grid_mean(values: torch.Tensor, on_board: torch.Tensor, k: int) -> torch.Tensor:
    n, c, h, w = values.shape
    board_rows = (on_board[:, 0].amax(dim=2) > 0).sum(dim=1)  # board_y per position
    board_cols = (on_board[:, 0].amax(dim=1) > 0).sum(dim=1)  # board_x per position

    row_bins = _axis_bins(board_rows, h, k)  # (N, K, H)
    col_bins = _axis_bins(board_cols, w, k)  # (N, K, W)
    regions = row_bins[:, :, None, :, None] * col_bins[:, None, :, None, :]  # (N, K, K, H, W)
    regions = (regions * on_board[:, :, None]).reshape(n, k * k, h * w)

    counts = regions.sum(dim=2)  # (N, K*K)
    if bool((counts == 0).any()):
        raise ConfigError(f"pooling grid:{k} found a board region with no on-board point; use a smaller K")

    # (N, C, HW) @ (N, HW, K*K) -> (N, C, K*K); then region-major columns.
    sums = torch.bmm(values.reshape(n, c, h * w), regions.transpose(1, 2))
    means = sums / counts[:, None, :]
    return means.transpose(1, 2).reshape(n, k * k * c)


def _axis_bins(lengths: torch.Tensor, size: int, k: int) -> torch.Tensor:
    """One-hot bin of every coordinate along one axis, (N, K, size), 0 off the board."""
    coords = torch.arange(size, device=lengths.device)
    step = torch.clamp(lengths // k, min=1)
    bins = torch.clamp(coords[None, :] // step[:, None], max=k - 1)  # (N, size)
    inside = coords[None, :] < lengths[:, None]
    one_hot = bins[:, None, :] == torch.arange(k, device=lengths.device)[None, :, None]
    return (one_hot & inside[:, None, :]).float()
