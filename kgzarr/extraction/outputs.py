"""Result files in the output folder, written atomically, and reading them back.

Files, as the ai_go_explain pipeline names them (plus ``pos_index.csv``):

- ``pooled_<layer>.npy``: float32 (positions, columns), rows in store order.
  ``<layer>`` is the requested layer name without a trailing ``_output``.
- ``pooled_meta.json``: how the matrix was made (see :mod:`kgzarr.extraction.meta`).
- ``pos_index_to_npz.txt``: the source ``.npz`` path of each row, one per line.
- ``pos_index.csv``: ``row,npz_path,row_in_file,board_x,board_y``.

An extract writes its files into a hidden staging folder inside the output
folder (:class:`StagedOutputs`) and moves them into place only when all are
complete: first a ``COMMIT`` marker listing them, then the removal of any old
``pooled_meta.json``, then the data files, and ``pooled_meta.json`` last. A
killed extract therefore leaves either the previous results, or results
without a meta (which readers reject), or the new results, never a truncated
file under a final name. The next extract in that folder finishes a commit
that has its marker and deletes a staging folder without one. The functions
that write one file alone (:func:`write_npy_blocks`, :func:`write_json`,
:func:`write_pos_index`) also write a temporary name and rename it. The
``.npy`` is written one block of rows at a time, so the N×C matrix is never
held in memory.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import xarray as xr

from kgzarr.data.lock import process_alive
from kgzarr.errors import OutputExistsError, OutputWriteError, StoreFormatError

__all__ = [
    "META_NAME",
    "INDEX_NAME",
    "CSV_NAME",
    "output_tag",
    "npy_name",
    "check_outputs_absent",
    "StagedOutputs",
    "recover_staged_outputs",
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

# Staging folders are named with this prefix and the writer's pid.
STAGING_PREFIX = ".kgzarr-staging-"
_COMMIT_MARKER = "COMMIT"


def output_tag(layer: str) -> str:
    """Return the file tag of a requested layer name: ``trunk_block_13_output`` -> ``trunk_block_13``."""
    return layer[: -len("_output")] if layer.endswith("_output") else layer


def npy_name(layer: str) -> str:
    return f"pooled_{output_tag(layer)}.npy"


def check_outputs_absent(out: Path, names: Iterable[str], overwrite: bool) -> None:
    """Raise OutputExistsError when any result file exists in ``out`` and ``overwrite`` is false.

    An ``out`` that exists but is not a folder raises OutputExistsError even
    with ``overwrite``, before any forward pass runs.
    """
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output folder {out} exists but is not a folder; choose another --out")
    if overwrite:
        return
    present = sorted(name for name in names if (out / name).exists())
    if present:
        raise OutputExistsError(
            f"output folder {out} already contains {', '.join(present)}; "
            "pass --overwrite to replace them or choose another --out"
        )


class StagedOutputs:
    """The result files of one extract, written in a staging folder and moved into ``out`` together.

    Use as a context manager: :meth:`path` names where to write each file and
    :meth:`commit` moves them into place. Leaving the block without a commit,
    for example on an error, deletes the staging folder and keeps whatever
    ``out`` contained before.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = out / f"{STAGING_PREFIX}{os.getpid()}"
        self._names: list[str] = []

    def __enter__(self) -> StagedOutputs:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir()
        except OSError as exc:
            raise OutputWriteError(
                f"creating the output folder {self.out} failed ({exc.strerror}); check its path, permissions and free space"
            ) from exc
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def path(self, name: str) -> Path:
        """Return where to write the result file ``name`` until the commit."""
        if name not in self._names:
            self._names.append(name)
        return self.folder / name

    def commit(self) -> None:
        """Move every staged file into the output folder, ``pooled_meta.json`` last."""
        order = [name for name in self._names if name != META_NAME] + [name for name in self._names if name == META_NAME]
        try:
            with _atomic_target(self.folder / _COMMIT_MARKER) as temporary:
                temporary.write_text(json.dumps(order), encoding="utf-8")
            _finish_commit(self.folder, self.out, order)
        except OSError as exc:
            raise OutputWriteError(
                f"moving the results into {self.out} failed: {exc}; check free disk space and permissions, "
                "then run the extract again"
            ) from exc


def recover_staged_outputs(out: Path) -> None:
    """Finish or delete what extracts that no longer run left in the staging folders of ``out``."""
    if not out.is_dir():
        return
    for folder in sorted(out.glob(f"{STAGING_PREFIX}*")):
        pid_text = folder.name[len(STAGING_PREFIX):]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and process_alive(int(pid_text)):
            continue
        marker = folder / _COMMIT_MARKER
        if marker.is_file():
            order = json.loads(marker.read_text(encoding="utf-8"))
            _finish_commit(folder, out, order)
            logger.warning("finished moving the results of an interrupted extract into %s", out)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("deleted %s, the unfinished files of an interrupted extract", folder)


def _finish_commit(folder: Path, out: Path, order: Sequence[str]) -> None:
    # An old meta is removed before any new file arrives, so it never describes
    # new data. It goes only while the new meta is still staged: once that has
    # moved, the meta in out is the new one.
    if (folder / META_NAME).exists():
        with contextlib.suppress(FileNotFoundError):
            (out / META_NAME).unlink()
    for name in order:
        if (folder / name).exists():
            os.replace(folder / name, out / name)
    shutil.rmtree(folder)


def _open_output(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    """Open a result file for writing; every writer here opens its files through this one function."""
    return path.open(mode, **kwargs)


def _shown_path(path: Path) -> Path:
    """Return the final path of a file written in a staging folder, as the user knows it."""
    return path.parent.parent / path.name if path.parent.name.startswith(STAGING_PREFIX) else path


@contextlib.contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place when the block succeeds."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        if isinstance(exc, OutputWriteError):
            raise
        raise OutputWriteError(
            f"writing {_shown_path(path)} failed: {exc}; check free disk space and permissions, then run the "
            "extract again (earlier results in that folder are unchanged)"
        ) from exc
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
    with _atomic_target(path) as temporary, _open_output(temporary, "wb") as handle:
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
        with _open_output(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=2, default=str) + "\n")


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
    with _atomic_target(text_path) as temporary, _open_output(temporary, "w", encoding="utf-8") as handle:
        for row, index in enumerate(file_index):
            handle.write(("\n" if row else "") + npz_paths[index])

    with _atomic_target(csv_path) as temporary, _open_output(temporary, "w", encoding="utf-8", newline="") as handle:
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
