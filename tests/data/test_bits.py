"""Bit unpacking of KataGo's packed binary planes."""

from __future__ import annotations

import numpy as np
import pytest
from positions_factory import synthetic_arrays
from hypothesis import given, settings
from hypothesis import strategies as st

from kgzarr.data.bits import board_sizes, pack_planes, packed_length, tensor_side_from_packed_length, unpack_planes


@pytest.mark.parametrize("side", [5, 7, 9, 19])
def test_unpack_matches_numpy_slice(side: int) -> None:
    rng = np.random.default_rng(side)
    packed = rng.integers(0, 256, (40, 22, packed_length(side, side)), dtype=np.uint8)
    expected = np.unpackbits(packed, axis=-1)[..., : side * side].reshape(40, 22, side, side)
    result = unpack_planes(packed, side, side)
    assert result.dtype == np.uint8
    assert result.flags.c_contiguous
    assert np.array_equal(result, expected)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(rows: int, channels: int, height: int, width: int, seed: int) -> None:
    planes = np.random.default_rng(seed).integers(0, 2, (rows, channels, height, width), dtype=np.uint8)
    packed = pack_planes(planes)
    assert packed.shape == (rows, channels, packed_length(height, width))
    assert np.array_equal(unpack_planes(packed, height, width), planes)


def test_unpack_wrong_length_raises() -> None:
    with pytest.raises(ValueError, match="7x7"):
        unpack_planes(np.zeros((1, 22, 6), np.uint8), 7, 7)


def test_tensor_side_from_length() -> None:
    for side in range(5, 40):
        assert tensor_side_from_packed_length(packed_length(side, side)) == side
    assert tensor_side_from_packed_length(packed_length(3, 3)) is None
    assert tensor_side_from_packed_length(3) is None


def test_board_sizes_rectangular() -> None:
    boards = [(7, 7), (5, 6), (6, 5), (1, 7), (3, 2)]
    arrays = synthetic_arrays(len(boards), 7, boards=boards)
    board_x, board_y = board_sizes(arrays["binaryInputNCHWPacked"], 7, 7)
    assert board_x.dtype == np.int16
    assert board_x.tolist() == [x for x, _ in boards]
    assert board_y.tolist() == [y for _, y in boards]
