"""Appending rows to a positions store: the batch format, the columns, chunk-aligned writes.

Any source (a training ``.npz`` file, an SGF file) becomes a :class:`RowBatch`;
the functions here turn a list of batches into one column per stored array,
write them after the committed rows and commit the file table last, so an
interrupted append leaves the store at its previous commit.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from kgzarr.data.store import StoreWriter, default_chunk_rows, write_rows
from kgzarr.errors import ConfigError

__all__ = ["RowBatch", "append_batches", "create_store"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowBatch:
    """Rows from one source file, ready to append.

    ``arrays`` are keyed by KataGo's npz names; ``coords`` contains extra per-row
    coordinates (numbers or strings) such as an SGF game's ``game_index``.
    """

    path: str
    relative_path: str
    arrays: dict[str, np.ndarray]
    coords: dict[str, np.ndarray]
    size: int
    sha256: str
    tensor_side: int
    mtime_ns: int | None = None  # modification time when read, which lets extract notice later edits cheaply

    @property
    def num_rows(self) -> int:
        return int(self.arrays["globalInputNC"].shape[0])


def create_store(url: str, first: RowBatch, root: str, chunk_rows: int | None) -> StoreWriter:
    shapes = {key: tuple(array.shape[1:]) for key, array in first.arrays.items()}
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(shapes["binaryInputNCHWPacked"][0], first.tensor_side)
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive number of rows, got {chunk_rows}")
    logger.info("creating %s: %dx%d tensors, %d rows per chunk", url, first.tensor_side, first.tensor_side, chunk_rows)
    return StoreWriter.create(url, trailing_shapes=shapes, tensor_side=first.tensor_side, chunk_rows=chunk_rows, ingest_root=root)


def append_batches(
    writer: StoreWriter,
    batches: list[RowBatch],
    table: list[dict[str, Any]],
    scheduler: Any,
    compute_kwargs: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Write the batches' rows after the committed ones, then commit; return their file-table entries."""
    start = writer.committed_rows
    row_coords = copy.deepcopy(writer.attrs["row_coords"])
    columns = _columns(writer, batches, len(table), row_coords)
    stop = start + len(columns["file_index"])

    for name, column in columns.items():
        if name in row_coords:
            writer.ensure_coord(name, column.dtype, _fill_value(column.dtype))
    writer.resize(stop, list(columns))
    _write_chunk_aligned(writer.url, start, columns, writer.chunk_rows, compute_kwargs)

    entries = []
    first_row = start
    for batch in batches:
        entry = {"path": batch.relative_path, "size": batch.size, "sha256": batch.sha256, "rows": batch.num_rows, "first_row": first_row}
        if batch.mtime_ns is not None:
            entry["mtime_ns"] = batch.mtime_ns
        entries.append(entry)
        first_row += batch.num_rows
    writer.commit(files=[*table, *entries], committed_rows=stop, row_coords=row_coords)
    return entries


def _columns(
    writer: StoreWriter, batches: list[RowBatch], first_file_index: int, row_coords: dict[str, dict[str, Any]]
) -> dict[str, np.ndarray]:
    """Concatenate the batches into one column per stored array, extending row_coords in place."""
    columns = {name: np.concatenate([batch.arrays[key] for batch in batches]) for name, key in writer.attrs["arrays"].items()}
    columns["file_index"] = np.concatenate(
        [np.full(batch.num_rows, first_file_index + i, dtype=np.int32) for i, batch in enumerate(batches)]
    )
    columns["source_row"] = np.concatenate([np.arange(batch.num_rows, dtype=np.int32) for batch in batches])
    columns["board_x"] = np.concatenate([batch.coords["board_x"] for batch in batches]).astype(np.int16)
    columns["board_y"] = np.concatenate([batch.coords["board_y"] for batch in batches]).astype(np.int16)

    extra = sorted({name for batch in batches for name in batch.coords} - {"board_x", "board_y"})
    for name in [*row_coords, *(name for name in extra if name not in row_coords)]:
        columns[name] = _coord_column(name, batches, row_coords)
    return columns


def _coord_column(name: str, batches: list[RowBatch], row_coords: dict[str, dict[str, Any]]) -> np.ndarray:
    """Build one extra coordinate column; strings become int32 codes into the categories list."""
    values = [batch.coords.get(name) for batch in batches]
    present = [np.asarray(value) for value in values if value is not None]
    spec = row_coords.get(name) or {"kind": _coord_kind(present[0].dtype), "categories": []}
    row_coords[name] = spec
    parts = []
    for batch, value in zip(batches, values):
        if value is None:
            parts.append(np.full(batch.num_rows, _fill_value(_coord_dtype(spec["kind"])), dtype=_coord_dtype(spec["kind"])))
        elif spec["kind"] == "str":
            parts.append(_encode(np.asarray(value).astype(str), spec["categories"]))
        else:
            parts.append(np.asarray(value).astype(_coord_dtype(spec["kind"])))
    return np.concatenate(parts)


def _coord_kind(dtype: np.dtype) -> str:
    if dtype.kind in "biu":
        return "int"
    if dtype.kind == "f":
        return "float"
    return "str"


def _coord_dtype(kind: str) -> np.dtype:
    return np.dtype({"int": np.int64, "float": np.float64, "str": np.int32}[kind])


def _fill_value(dtype: np.dtype) -> Any:
    # Rows from sources without this coordinate read as -1 (numbers and
    # string codes) or NaN.
    return float("nan") if dtype.kind == "f" else -1


def _encode(values: np.ndarray, categories: list[str]) -> np.ndarray:
    """Return int32 codes of ``values`` into ``categories``, appending new strings in first-seen order."""
    uniques, inverse = np.unique(values, return_inverse=True)
    first_seen = np.full(len(uniques), len(values))
    np.minimum.at(first_seen, inverse.ravel(), np.arange(len(values)))

    index = {category: code for code, category in enumerate(categories)}
    for value in uniques[np.argsort(first_seen, kind="stable")].tolist():
        if value not in index:
            index[value] = len(categories)
            categories.append(value)
    codes = np.array([index[value] for value in uniques.tolist()], dtype=np.int32)
    return codes[inverse.ravel()]


def _write_chunk_aligned(
    url: str, start: int, columns: Mapping[str, np.ndarray], chunk_rows: int, compute_kwargs: Mapping[str, Any]
) -> None:
    """Write rows from ``start`` on: first the tail of the last partial chunk, then whole chunks in parallel.

    Every task writes whole chunks that no other task touches, so tasks never
    read-modify-write the same chunk concurrently.
    """
    stop = start + len(columns["file_index"])
    boundary = min(-(-start // chunk_rows) * chunk_rows, stop)
    if boundary > start:
        write_rows(url, start, _slice(columns, 0, boundary - start))

    tasks = [
        dask.delayed(write_rows, pure=False)(url, chunk_start, _slice(columns, chunk_start - start, min(chunk_start + chunk_rows, stop) - start))
        for chunk_start in range(boundary, stop, chunk_rows)
    ]
    dask.compute(*tasks, **compute_kwargs)


def _slice(columns: Mapping[str, np.ndarray], begin: int, end: int) -> dict[str, np.ndarray]:
    return {name: column[begin:end] for name, column in columns.items()}
