"""Per-column statistics of a (position, column) array, as Dask reductions.

The statistics drive the non-negative transform and the column scaling, so
they are computed over the stored raw values without holding the N×C array in
memory: Dask reads one chunk per task and combines partial results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

__all__ = ["ColumnStats", "column_stats"]


@dataclass(frozen=True)
class ColumnStats:
    """Minimum, maximum, mean and population standard deviation of each column.

    The arrays have one float64 entry per column; ``count`` is the number of rows.
    """

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: int

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics as JSON-ready lists."""
        return {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": self.count,
        }


def column_stats(array: da.Array, scheduler: Any = None) -> ColumnStats:
    """Compute the statistics of every column of a 2-D Dask array in one pass.

    Each task reduces one row chunk to five float64 rows (min, max, count,
    mean, sum of squared deviations), so a chunk is freed as soon as it is
    reduced. The partial results combine with the pairwise update of Chan,
    Golub and LeVeque, which keeps the variance of a million rows accurate.
    ``scheduler`` is passed to :func:`dask.compute` (None: Dask's default).
    """
    if array.ndim != 2:
        raise ValueError(f"column_stats needs a 2-D (position, column) array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("column_stats needs at least one row")

    rows_only = array.rechunk({1: -1})
    partial = rows_only.map_blocks(_chunk_moments, new_axis=1, chunks=(1, 5, array.shape[1]), dtype=np.float64)
    (moments,) = dask.compute(partial, scheduler=scheduler)
    return _combine(moments, int(array.shape[0]))


def _chunk_moments(block: np.ndarray) -> np.ndarray:
    values = block.astype(np.float64)
    mean = values.mean(axis=0)
    squares = ((values - mean) ** 2).sum(axis=0)
    count = np.full(mean.shape, values.shape[0], dtype=np.float64)
    return np.stack([values.min(axis=0), values.max(axis=0), count, mean, squares])[None]


def _combine(moments: np.ndarray, rows: int) -> ColumnStats:
    minimum, maximum, count, mean, squares = moments[0]
    for part in moments[1:]:
        part_count, part_mean, part_squares = part[2], part[3], part[4]
        total = count + part_count
        delta = part_mean - mean
        squares = squares + part_squares + delta**2 * count * part_count / total
        mean = mean + delta * part_count / total
        count = total
        minimum = np.minimum(minimum, part[0])
        maximum = np.maximum(maximum, part[1])
    return ColumnStats(min=minimum, max=maximum, mean=mean, std=np.sqrt(squares / count), count=rows)
