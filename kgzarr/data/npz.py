"""Reading and validating one KataGo self-play training ``.npz`` file.

KataGo's C++ self-play writer (``cpp/dataio/trainingwrite.cpp``) stores each
array of a training file as one ``.npy`` member of a zip archive. kgzarr reads
the whole file into memory once, hashes those bytes and parses the members from
them, so a file is read from disk a single time. On the nine selfplay7 files plus
kata19 that took 50 ms, the same as ``np.load`` (49.7-54.8 ms over repeated runs,
numpy 2.4 on a 2-core VM), and it saves the second pass that hashing would cost.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from kgzarr.data.bits import packed_length, tensor_side_from_packed_length
from kgzarr.errors import PositionsFileError

__all__ = [
    "ArraySpec",
    "NPZ_ARRAYS",
    "REQUIRED_KEYS",
    "PositionsFile",
    "read_positions_file",
    "parse_npz_bytes",
    "validate_arrays",
]


@dataclass(frozen=True)
class ArraySpec:
    """One array of KataGo's training format and how kgzarr stores it."""

    npz_key: str
    store_name: str
    dtype: str
    dims: tuple[str, ...]  # dims after ``position``, as open_positions names them


# Every array KataGo v1.17 writes. All of them are kept when a file has them.
NPZ_ARRAYS: dict[str, ArraySpec] = {
    spec.npz_key: spec
    for spec in (
        ArraySpec("binaryInputNCHWPacked", "binary_input_packed", "uint8", ("feature", "packed_byte")),
        ArraySpec("globalInputNC", "global_input", "float32", ("global_feature",)),
        ArraySpec("policyTargetsNCMove", "policy_targets", "int16", ("policy_channel", "move")),
        ArraySpec("globalTargetsNC", "global_targets", "float32", ("global_target",)),
        ArraySpec("scoreDistrN", "score_distribution", "int8", ("score_bucket",)),
        ArraySpec("valueTargetsNCHW", "value_targets", "int8", ("value_channel", "y", "x")),
        ArraySpec("qValueTargetsNCMove", "q_value_targets", "int16", ("q_value_channel", "move")),
        ArraySpec("metadataInputNC", "metadata_input", "float32", ("metadata_feature",)),
    )
}

REQUIRED_KEYS = ("binaryInputNCHWPacked", "globalInputNC")


@dataclass(frozen=True)
class PositionsFile:
    """The validated arrays of one training file, keyed by KataGo's npz names."""

    path: str
    arrays: dict[str, np.ndarray]
    num_rows: int
    tensor_side: int
    size: int
    sha256: str
    ignored_keys: tuple[str, ...] = field(default=())


def read_positions_file(path: str | os.PathLike[str], *, board_size: int | None = None) -> PositionsFile:
    """Read, hash and validate one training ``.npz`` file.

    Raises PositionsFileError naming the file and the problem when the file is
    not an npz archive or fails any check of :func:`validate_arrays`.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise PositionsFileError(f"{path}: cannot be read ({exc.strerror}); check that it exists and is readable") from exc

    arrays, ignored = parse_npz_bytes(data, source=path)
    side = validate_arrays(arrays, source=path, board_size=board_size)
    return PositionsFile(
        path=path,
        arrays=arrays,
        num_rows=int(arrays["globalInputNC"].shape[0]),
        tensor_side=side,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        ignored_keys=ignored,
    )


def parse_npz_bytes(data: bytes, *, source: str) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Parse the ``.npy`` members of an npz archive held in memory.

    Returns the arrays kgzarr recognizes, keyed by npz name, and the names of the
    other members, which are skipped. Any damage raises PositionsFileError.
    """
    arrays: dict[str, np.ndarray] = {}
    ignored: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key not in NPZ_ARRAYS:
                    ignored.append(key)
                    continue
                arrays[key] = _read_member(archive, info, source)
    except zipfile.BadZipFile as exc:
        raise PositionsFileError(_bad_zip_message(data, source, exc)) from exc
    except _MEMBER_ERRORS as exc:
        raise PositionsFileError(
            f"{source}: a member of the npz archive is damaged or not a valid .npy array ({exc}); "
            "the file is probably corrupt, so copy it again or use --skip-bad"
        ) from exc
    return arrays, tuple(ignored)


# Exceptions that zipfile, zlib and numpy raise for a damaged member: a bad deflate stream
# (zlib.error), an unsupported zip feature (NotImplementedError), an encrypted
# member (RuntimeError), a cut-off or malformed .npy (ValueError, EOFError).
_MEMBER_ERRORS = (ValueError, EOFError, OSError, zipfile.LargeZipFile, zlib.error, NotImplementedError, RuntimeError)


def _bad_zip_message(data: bytes, source: str, exc: Exception) -> str:
    if data.startswith(b"PK"):
        return (
            f"{source}: the zip archive is truncated or damaged ({exc}); "
            "copy the file again, or remove it from the positions folder or use --skip-bad"
        )
    return (
        f"{source}: not a zip archive, so not a KataGo .npz training file ({exc}); "
        "remove it from the positions folder or use --skip-bad"
    )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> np.ndarray:
    """Read one ``.npy`` member, first checking that its header's shape fits the member's size."""
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        header_reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = header_reader(handle, max_header_size=_MAX_NPY_HEADER)
        declared = math.prod(shape) * dtype.itemsize
        available = info.file_size - handle.tell()
        if declared > available:
            raise ValueError(
                f"member {info.filename} declares shape {shape} of {dtype} ({declared} bytes) "
                f"but holds {available} bytes of data"
            )
        handle.seek(0)
        return np.lib.format.read_array(handle, allow_pickle=False, max_header_size=_MAX_NPY_HEADER)


# numpy's own default limit on the length of a .npy header.
_MAX_NPY_HEADER = 10000


def validate_arrays(
    arrays: Mapping[str, np.ndarray], *, source: str, board_size: int | None = None, store_side: int | None = None
) -> int:
    """Check one batch of rows in KataGo's training layout and return its tensor side L.

    Checks: required keys, dtypes, dimensions, equal row counts, at least one
    row, the packed length against L (and against ``board_size``, the user's
    ``--board-size``, and ``store_side``, the tensor side of the store the rows
    are for, when given), finite global inputs and a non-empty on-board plane
    in every row. Arrays of a non-native byte order are accepted; the caller
    converts them.
    """
    _check_required(arrays, source)
    unknown = sorted(set(arrays) - set(NPZ_ARRAYS))
    if unknown:
        raise PositionsFileError(
            f"{source}: unknown arrays {', '.join(unknown)}; kgzarr stores only {', '.join(NPZ_ARRAYS)}"
        )
    for key, array in arrays.items():
        _check_dtype_and_ndim(key, array, source)
    _check_row_counts(arrays, source)
    side = _tensor_side(arrays, source, board_size, store_side)
    _check_trailing_shapes(arrays, side, source)
    _check_finite_globals(arrays["globalInputNC"], source)
    _check_on_board_plane(arrays["binaryInputNCHWPacked"], source)
    return side


def _check_required(arrays: Mapping[str, np.ndarray], source: str) -> None:
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise PositionsFileError(
            f"{source}: missing required array {', '.join(missing)} (found: {', '.join(sorted(arrays)) or 'none'}); "
            "kgzarr needs KataGo training files written by 'katago selfplay' or an equivalent writer"
        )


def _check_dtype_and_ndim(key: str, array: np.ndarray, source: str) -> None:
    spec = NPZ_ARRAYS[key]
    if array.dtype.newbyteorder("=") != np.dtype(spec.dtype):
        raise PositionsFileError(
            f"{source}: array {key} has dtype {array.dtype}, expected {spec.dtype}; "
            "the file was not written in KataGo's training format"
        )
    expected_ndim = 1 + len(spec.dims)
    if array.ndim != expected_ndim:
        raise PositionsFileError(
            f"{source}: array {key} has shape {array.shape}, expected {expected_ndim} dimensions "
            f"(rows, {', '.join(spec.dims)}); the file was not written in KataGo's training format"
        )


def _check_row_counts(arrays: Mapping[str, np.ndarray], source: str) -> int:
    counts = {key: int(array.shape[0]) for key, array in arrays.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{key}={count}" for key, count in counts.items())
        raise PositionsFileError(
            f"{source}: arrays have different row counts ({listing}); the file is inconsistent, "
            "so regenerate it or use --skip-bad"
        )
    num_rows = counts["globalInputNC"]
    if num_rows == 0:
        raise PositionsFileError(f"{source}: the file has zero rows; remove it or use --skip-bad")
    return num_rows


def _tensor_side(arrays: Mapping[str, np.ndarray], source: str, board_size: int | None, store_side: int | None) -> int:
    length = int(arrays["binaryInputNCHWPacked"].shape[2])
    side = tensor_side_from_packed_length(length)
    for hint in (board_size, store_side):
        if side is None and hint is not None and packed_length(hint, hint) == length:
            side = hint
    if side is None and "valueTargetsNCHW" in arrays:
        side = int(arrays["valueTargetsNCHW"].shape[-1])
    if side is None or packed_length(side, side) != length:
        raise PositionsFileError(
            f"{source}: binaryInputNCHWPacked has {length} bytes per plane, which fits no single square "
            "tensor size; pass --board-size with the tensor side (dataBoardLen) the file was written for"
        )
    if board_size is not None and side != board_size:
        raise PositionsFileError(
            f"{source}: binaryInputNCHWPacked has {length} bytes per plane, so the tensor is {side}x{side}, "
            f"but --board-size {board_size} was given; ingest files of each tensor size into their own store"
        )
    if store_side is not None and side != store_side:
        raise PositionsFileError(
            f"{source}: binaryInputNCHWPacked has {length} bytes per plane, so the tensor is {side}x{side}, "
            f"but the store contains {store_side}x{store_side} tensors; ingest files of each tensor size into their own store"
        )
    return side


def _check_trailing_shapes(arrays: Mapping[str, np.ndarray], side: int, source: str) -> None:
    points = side * side
    expected_last = {
        "policyTargetsNCMove": points + 1,
        "qValueTargetsNCMove": points + 1,
    }
    for key, last in expected_last.items():
        if key in arrays and arrays[key].shape[-1] != last:
            raise PositionsFileError(
                f"{source}: array {key} has {arrays[key].shape[-1]} moves per row, but a {side}x{side} tensor "
                f"needs {last} (points plus pass); the file mixes tensor sizes"
            )
    if "valueTargetsNCHW" in arrays and arrays["valueTargetsNCHW"].shape[-2:] != (side, side):
        raise PositionsFileError(
            f"{source}: array valueTargetsNCHW has planes of {arrays['valueTargetsNCHW'].shape[-2:]}, "
            f"but the binary input is {side}x{side}; the file mixes tensor sizes"
        )


def _check_finite_globals(global_input: np.ndarray, source: str) -> None:
    finite = np.isfinite(global_input)
    if finite.all():
        return
    row, feature = np.argwhere(~finite)[0]
    raise PositionsFileError(
        f"{source}: globalInputNC row {row}, global feature {feature} is {global_input[row, feature]} "
        f"({int((~finite).any(axis=1).sum())} rows have NaN or inf); remove the file or use --skip-bad"
    )


def _check_on_board_plane(packed: np.ndarray, source: str) -> None:
    empty_rows = np.flatnonzero(~packed[:, 0, :].any(axis=1))
    if empty_rows.size:
        raise PositionsFileError(
            f"{source}: row {empty_rows[0]} has an all-zero on-board plane (plane 0 of binaryInputNCHWPacked; "
            f"{empty_rows.size} such rows), so it describes no board; remove the file or use --skip-bad"
        )
