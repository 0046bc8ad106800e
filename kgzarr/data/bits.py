"""Bit packing of KataGo's binary input planes.

KataGo's training files store each binary plane of an H x W tensor as H*W bits,
flattened row-major (index ``y * W + x``) and packed most significant bit first
into ``ceil(H * W / 8)`` bytes, with zero padding after the last point.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "packed_length",
    "tensor_side_from_packed_length",
    "unpack_planes",
    "pack_planes",
    "board_sizes",
]


def packed_length(height: int, width: int) -> int:
    """Return the bytes one packed plane of a ``height`` x ``width`` tensor takes."""
    return (height * width + 7) // 8


def tensor_side_from_packed_length(length: int) -> int | None:
    """Return the square tensor side L whose packed plane has ``length`` bytes.

    Returns None when no side fits or when two sides fit. Sides 1..4 share
    packed lengths (1 and 2 bytes), and from 5 on every side has its own length.
    """
    if length < 1:
        return None
    # packed_length(L, L) == length exactly when 8 * (length - 1) < L * L <= 8 * length,
    # so the candidates are found in constant time, whatever length a damaged file declares.
    lowest = math.isqrt(8 * (length - 1)) + 1
    highest = math.isqrt(8 * length)
    return lowest if lowest == highest else None


def unpack_planes(packed: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unpack ``(..., C, ceil(H*W/8))`` packed planes into ``(..., C, H, W)`` uint8 of 0 and 1.

    ``np.unpackbits`` with ``count`` drops the padding bits while unpacking, so
    the result is contiguous without a second copy. On 16384 random 7x7 rows it
    takes 5.4 ms against 16.5 ms for unpack-then-slice, 10.1 ms for a numba loop
    and 46 ms for a 256-entry lookup table (numpy 2.4, one core of a 2-core VM;
    ``benchmarks/bench_ingest.py`` repeats the comparison).
    """
    points = height * width
    if packed.shape[-1] != packed_length(height, width):
        raise ValueError(
            f"packed planes have {packed.shape[-1]} bytes per plane, but a {height}x{width} tensor "
            f"needs {packed_length(height, width)}; pass the tensor size the planes were packed with"
        )
    bits = np.unpackbits(packed, axis=-1, count=points)
    return bits.reshape(*packed.shape[:-1], height, width)


def pack_planes(planes: np.ndarray) -> np.ndarray:
    """Pack ``(..., C, H, W)`` planes of 0 and 1 into KataGo's ``(..., C, ceil(H*W/8))`` layout."""
    flat = np.asarray(planes, dtype=np.uint8).reshape(*planes.shape[:-2], -1)
    return np.packbits(flat, axis=-1)


def board_sizes(packed: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the board width and height of each row, read from the on-board plane (plane 0).

    ``packed`` has shape ``(N, C, P)``. The width is the number of columns with
    at least one on-board point, and the height the number of such rows. Both
    are int16 and 0 for a row whose plane 0 is empty.
    """
    on_board = unpack_planes(packed[:, 0, :], height, width).astype(bool)
    board_x = on_board.any(axis=1).sum(axis=1, dtype=np.int16)
    board_y = on_board.any(axis=2).sum(axis=1, dtype=np.int16)
    return board_x, board_y
