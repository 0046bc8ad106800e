"""Non-negative transforms and column scaling of pooled activations, for NMF.

Non-negative modes:

- ``shift`` (the ai_go_explain rule): when any value in the whole matrix is
  negative, subtract each column's minimum from that column, so every column
  then starts at 0. When nothing is negative the values are left alone.
- ``clip``: negative values become 0.
- ``split``: 2C columns; columns 0..C-1 hold ``max(x, 0)`` and columns C..2C-1
  hold ``max(-x, 0)``, so both signs survive as non-negative parts.
- ``none``: signed values, unchanged. NMF needs non-negative input, so
  :func:`plan_offsets` logs a warning.

Scale modes, applied after the non-negative transform:

- ``max``: divide each column by its maximum absolute value (its maximum,
  for the non-negative modes).
- ``std``: divide each column by its population standard deviation. The
  values are not centred, so non-negative columns stay non-negative.
- ``none``: no scaling.

A column whose divisor is 0 (all zeros for ``max``, constant for ``std``) is
left as it is: its divisor is recorded as 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from kgzarr.errors import ConfigError
from kgzarr.extraction.stats import ColumnStats

__all__ = [
    "NONNEG_MODES",
    "SCALE_MODES",
    "ColumnTransform",
    "check_modes",
    "plan_offsets",
    "apply_nonneg",
    "plan_transform",
]

logger = logging.getLogger(__name__)

NONNEG_MODES = ("shift", "clip", "split", "none")
SCALE_MODES = ("max", "std", "none")


def check_modes(nonneg: str, scale: str) -> None:
    """Raise ConfigError for an unknown non-negative or scale mode."""
    if nonneg not in NONNEG_MODES:
        raise ConfigError(f"invalid non-negative mode {nonneg!r}; use one of {', '.join(NONNEG_MODES)}")
    if scale not in SCALE_MODES:
        raise ConfigError(f"invalid scale mode {scale!r}; use one of {', '.join(SCALE_MODES)}")


def plan_offsets(nonneg: str, raw: ColumnStats) -> np.ndarray:
    """Return the per-column offsets added before the transform (non-zero only for ``shift``)."""
    offsets = np.zeros_like(raw.min, dtype=np.float32)
    if nonneg == "shift" and bool((raw.min < 0).any()):
        offsets = (-raw.min).astype(np.float32)
    if nonneg == "none" and bool((raw.min < 0).any()):
        logger.warning("non-negative mode 'none' keeps negative values, but NMF needs non-negative input")
    return offsets


def apply_nonneg(values: Any, nonneg: str, offsets: np.ndarray) -> Any:
    """Apply a non-negative mode to a NumPy or Dask (rows, C) array, keeping float32."""
    if nonneg == "shift":
        return values + offsets
    if nonneg == "clip":
        return _positive_part(values)
    if nonneg == "split":
        concatenate = da.concatenate if isinstance(values, da.Array) else np.concatenate
        return concatenate([_positive_part(values), _positive_part(-values)], axis=1)
    return values


def _positive_part(values: Any) -> Any:
    # `values * (values > 0)` would turn -inf into NaN; maximum keeps the checks honest.
    return np.maximum(values, np.float32(0))


@dataclass(frozen=True)
class ColumnTransform:
    """The full per-column transform: ``nonneg(x + offsets) / divisors``.

    ``zero_columns`` lists output columns that are all zero after the
    non-negative transform; they stay zero.
    """

    nonneg: str
    scale: str
    offsets: np.ndarray
    divisors: np.ndarray
    zero_columns: tuple[int, ...]

    @property
    def out_columns(self) -> int:
        return int(self.divisors.shape[0])

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Transform one block of raw pooled rows; returns float32."""
        shifted = apply_nonneg(np.asarray(values, dtype=np.float32), self.nonneg, self.offsets)
        return (shifted / self.divisors).astype(np.float32, copy=False)

    def to_meta(self) -> dict[str, Any]:
        """Return the JSON-ready description written into ``pooled_meta.json``."""
        return {
            "nonneg": self.nonneg,
            "offsets": self.offsets.tolist(),
            "scale": self.scale,
            "scales": self.divisors.tolist(),
            "constant_columns": list(self.zero_columns),
        }


def plan_transform(nonneg: str, scale: str, offsets: np.ndarray, transformed: ColumnStats) -> ColumnTransform:
    """Build the transform from the statistics of the non-negative values.

    ``transformed`` holds the column statistics after :func:`apply_nonneg`.
    """
    largest = np.maximum(transformed.max, -transformed.min)
    zero_columns = tuple(int(i) for i in np.flatnonzero(largest == 0))

    if scale == "max":
        divisors = largest
    elif scale == "std":
        divisors = transformed.std
    else:
        divisors = np.ones_like(largest)

    unscaled = np.flatnonzero(divisors == 0)
    divisors = np.where(divisors == 0, 1.0, divisors).astype(np.float32)
    if scale == "std" and unscaled.size > len(zero_columns):
        logger.warning(
            "%d columns are constant but not zero, so scale 'std' leaves them unscaled", unscaled.size - len(zero_columns)
        )
    return ColumnTransform(nonneg, scale, offsets, divisors, zero_columns)
