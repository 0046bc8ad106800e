"""Result files in the output folder, written atomically, and reading them back.

Files, as the ai_go_explain pipeline names them (plus ``pos_index.csv``):

- ``pooled_<layer>.npy``: float32 (positions, columns), rows in store order.
  ``<layer>`` is the requested layer name without a trailing ``_output``.
- ``pooled_meta.json``: how the matrix was made (see :mod:`kgzarr.extraction.meta`).
- ``pos_index_to_npz.txt``: the source ``.npz`` path of each row, one per line.
- ``pos_index.csv``: ``row,npz_path,row_in_file,board_x,board_y``.

Every file is written under a temporary name in the same folder and renamed
into place when complete, so a crash never leaves a truncated result under
the final name. The ``.npy`` is written one block of rows at a time, so the
N×C matrix is never held in memory.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from kgzarr.errors import OutputExistsError, OutputWriteError, StoreFormatError

__all__ = [
    "META_NAME",
    "INDEX_NAME",
    "CSV_NAME",
    "output_tag",
    "npy_name",
    "check_outputs_absent",
    "write_npy_blocks",
    "write_json",
    "write_pos_index",
    "open_activations",
]

logger = logging.getLogger(__name__)

META_NAME = "pooled_meta.json"
INDEX_NAME = "pos_index_to_npz.txt"
CSV_NAME = "pos_index.csv"

_CSV_HEADER = ("row", "npz_path", "row_in_file", "board_x", "board_y")


def output_tag(layer: str) -> str:
    """Return the file tag of a requested layer name: ``trunk_block_13_output`` -> ``trunk_block_13``."""
    return layer[: -len("_output")] if layer.endswith("_output") else layer


def npy_name(layer: str) -> str:
    return f"pooled_{output_tag(layer)}.npy"


def check_outputs_absent(out: Path, names: Iterable[str], overwrite: bool) -> None:
    """Raise OutputExistsError when any result file exists in ``out`` and ``overwrite`` is false."""
    if overwrite:
        return
    present = sorted(name for name in names if (out / name).exists())
    if present:
        raise OutputExistsError(
            f"output folder {out} already contains {', '.join(present)}; "
            "pass --overwrite to replace them or choose another --out"
        )


@contextlib.contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place when the block succeeds."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputWriteError(f"writing {path} failed: {exc}; check free disk space and permissions") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_npy_blocks(path: Path, shape: tuple[int, int], blocks: Iterable[tuple[int, np.ndarray]]) -> None:
    """Write a float32 ``.npy`` of ``shape`` from (first row, block) pairs in row order, covering every row once.

    The blocks are appended after the ``.npy`` header instead of written
    through ``np.lib.format.open_memmap``. Dirty pages of a memory map count
    as resident memory until the kernel writes them back, so with a memory
    map the peak memory of an extract grew with N.
    """
    with _atomic_target(path) as temporary, temporary.open("wb") as handle:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)
        rows_written = 0
        for start, block in blocks:
            if start != rows_written:
                raise ValueError(f"blocks for {path} must come in row order: expected row {rows_written}, got {start}")
            handle.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
            rows_written += block.shape[0]

        if rows_written != shape[0]:
            raise OutputWriteError(f"writing {path} failed: {rows_written} rows were produced for {shape[0]} positions")


def write_json(path: Path, document: dict[str, Any]) -> None:
    with _atomic_target(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def write_pos_index(
    out: Path,
    npz_paths: Sequence[str],
    file_index: np.ndarray,
    source_row: np.ndarray,
    board_x: np.ndarray,
    board_y: np.ndarray,
) -> tuple[Path, Path]:
    """Write ``pos_index_to_npz.txt`` and ``pos_index.csv``; ``file_index`` maps each row to ``npz_paths``."""
    text_path = out / INDEX_NAME
    csv_path = out / CSV_NAME

    # Lines are joined with "\n" and no final newline, as the step-3 script wrote them.
    with _atomic_target(text_path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for row, index in enumerate(file_index):
            handle.write(("\n" if row else "") + npz_paths[index])

    with _atomic_target(csv_path) as temporary, temporary.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_CSV_HEADER)
        for row in range(len(file_index)):
            path = npz_paths[file_index[row]]
            writer.writerow((row, path, int(source_row[row]), int(board_x[row]), int(board_y[row])))
    return text_path, csv_path


def open_activations(source: str | os.PathLike[str], layer: str | None = None) -> xr.DataArray:
    """Open extract results as a lazy (position, channel) DataArray with their coords.

    ``source`` is an output folder (reads ``pooled_<layer>.npy`` through a
    memory map, with the coords from ``pos_index.csv``) or a positions store
    (reads the raw pooled values kept there). ``layer`` picks one layer when
    several were extracted; it may be the requested name or its file tag.
    """
    path = Path(source)
    if (path / META_NAME).is_file():
        from kgzarr.extraction.reading import open_output_folder

        return open_output_folder(path, layer)

    from kgzarr.extraction.raw import open_raw_activations

    try:
        return open_raw_activations(source, layer)
    except StoreFormatError as exc:
        raise StoreFormatError(
            f"{source} is neither an extract output folder (no {META_NAME}) nor a store with pooled values: {exc}"
        ) from exc
