"""Column statistics, non-negative transforms and scaling, against plain numpy."""

from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pytest

from kgzarr.errors import ConfigError
from kgzarr.extraction.stats import column_stats
from kgzarr.extraction.transforms import apply_nonneg, check_modes, plan_offsets, plan_transform


def _matrix(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(loc=0.2, size=(1000, 6)).astype(np.float32)
    matrix[:, 2] = np.abs(matrix[:, 2]) + 1.0  # a column that is positive everywhere
    return matrix


def _transform(matrix: np.ndarray, nonneg: str, scale: str, chunk: int = 128) -> np.ndarray:
    raw = da.from_array(matrix, chunks=(chunk, -1))
    offsets = plan_offsets(nonneg, column_stats(raw, scheduler="sync"))
    transformed = column_stats(apply_nonneg(raw, nonneg, offsets), scheduler="sync")
    plan = plan_transform(nonneg, scale, offsets, transformed)
    return plan.apply(matrix)


def test_stats_match_numpy() -> None:
    matrix = _matrix()

    stats = column_stats(da.from_array(matrix, chunks=(97, -1)), scheduler="sync")

    np.testing.assert_array_equal(stats.min, matrix.min(axis=0))
    np.testing.assert_array_equal(stats.max, matrix.max(axis=0))
    np.testing.assert_allclose(stats.mean, matrix.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, matrix.astype(np.float64).std(axis=0), rtol=1e-12)
    assert stats.count == 1000


def test_shift_max_is_step3_rule() -> None:
    """Pins the ai_go_explain rule: subtract every column minimum when any value is negative, then divide by the max."""
    matrix = _matrix()

    result = _transform(matrix, "shift", "max")

    shifted = matrix - matrix.min(axis=0, keepdims=True)
    expected = shifted / shifted.max(axis=0, keepdims=True)
    np.testing.assert_array_equal(result, expected)


def test_shift_keeps_nonnegative_matrix() -> None:
    matrix = np.abs(_matrix()) + 0.5

    result = _transform(matrix, "shift", "none")

    np.testing.assert_array_equal(result, matrix)


def test_clip_std() -> None:
    matrix = _matrix()

    result = _transform(matrix, "clip", "std")

    clipped = np.maximum(matrix, 0)
    np.testing.assert_allclose(result, clipped / clipped.astype(np.float64).std(axis=0), rtol=1e-6)


def test_split_columns() -> None:
    matrix = _matrix()

    result = _transform(matrix, "split", "none")

    assert result.shape == (1000, 12)
    np.testing.assert_array_equal(result[:, :6], np.maximum(matrix, 0))
    np.testing.assert_array_equal(result[:, 6:], np.maximum(-matrix, 0))


def test_none_max_uses_absolute(caplog: pytest.LogCaptureFixture) -> None:
    matrix = _matrix()

    with caplog.at_level(logging.WARNING, logger="kgzarr"):
        result = _transform(matrix, "none", "max")

    np.testing.assert_allclose(result, matrix / np.abs(matrix).max(axis=0), rtol=1e-6)
    assert "NMF needs non-negative input" in caplog.text


def test_zero_column_stays_zero() -> None:
    matrix = _matrix()
    matrix[:, 4] = -2.5  # constant, so the shift makes it all zero
    raw = da.from_array(matrix, chunks=(100, -1))
    offsets = plan_offsets("shift", column_stats(raw, scheduler="sync"))

    plan = plan_transform("shift", "max", offsets, column_stats(apply_nonneg(raw, "shift", offsets), scheduler="sync"))
    result = plan.apply(matrix)

    assert plan.zero_columns == (4,)
    assert np.all(result[:, 4] == 0)
    assert np.all(np.isfinite(result))
    assert plan.to_meta()["constant_columns"] == [4]


@pytest.mark.parametrize(("nonneg", "scale"), [("shift", "mad"), ("abs", "max")])
def test_check_modes_rejects(nonneg: str, scale: str) -> None:
    with pytest.raises(ConfigError, match="invalid"):
        check_modes(nonneg, scale)
