"""Fuzzing of the self-play .npz reader: any bytes give arrays or a PositionsFileError, quickly."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
from fault_helpers import valid_arrays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgzarr.data.npz import NPZ_ARRAYS, parse_npz_bytes, validate_arrays
from kgzarr.errors import PositionsFileError

# Seconds one input may take. The reader's work grows linearly with the input
# size, so a slower example points to a hang or a huge allocation.
MAX_SECONDS = 5.0

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _npz_bytes(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **valid_arrays(3, seed=4))
    return buffer.getvalue()


SEEDS = [_npz_bytes(True), _npz_bytes(False)]


def assert_reads_or_rejects(data: bytes) -> None:
    """Assert that ``data`` is read into valid arrays or rejected with PositionsFileError, in bounded time."""
    started = time.monotonic()
    try:
        arrays, _ = parse_npz_bytes(data, source="fuzz.npz")
        validate_arrays(arrays, source="fuzz.npz")
    except PositionsFileError as exc:
        assert str(exc).startswith("fuzz.npz: ")
    assert time.monotonic() - started < MAX_SECONDS


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_any_bytes(data: bytes) -> None:
    assert_reads_or_rejects(data)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 2**32), st.binary(min_size=1, max_size=8)), max_size=4),
    keep=st.one_of(st.just(1.0), st.floats(0.05, 1.0)),
)
def test_fuzz_damaged_npz(seed: bytes, edits: list[tuple[int, bytes]], keep: float) -> None:
    """Pins crashes such as zlib.error and NotImplementedError escaping from damaged archives."""
    data = bytearray(seed)
    for where, replacement in edits:
        offset = where % len(data)
        data[offset:offset + len(replacement)] = replacement
    assert_reads_or_rejects(bytes(data[: max(1, int(keep * len(data)))]))


npy_headers = st.fixed_dictionaries(
    {
        "descr": st.sampled_from(["<f4", "<f8", "|u1", "<i2", "|i1", ">f4", "|O", "<U3"]),
        "fortran_order": st.booleans(),
        "shape": st.lists(st.integers(0, 2**40), max_size=4).map(tuple),
    }
)


@FUZZ
@given(members=st.dictionaries(st.sampled_from([*NPZ_ARRAYS, "other"]), st.tuples(npy_headers, st.binary(max_size=256)), max_size=4))
def test_fuzz_npy_headers(members: dict[str, tuple[dict, bytes]]) -> None:
    """Pins .npy headers that declare huge shapes allocating memory before the data is read."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (header, payload) in members.items():
            npy = io.BytesIO()
            np.lib.format.write_array_header_1_0(npy, header)
            archive.writestr(f"{name}.npy", npy.getvalue() + payload)
    assert_reads_or_rejects(buffer.getvalue())
