"""The positions store: a Zarr v3 group of self-play rows, and its readers and writer.

Layout (``docs/store-format.md`` has the full description):

- one array per kept KataGo array, snake_case, rows along axis 0, the binary
  planes still bit-packed (``binary_input_packed``);
- per row: ``file_index`` (into the file table), ``source_row`` (row inside that
  file), ``board_x`` and ``board_y`` (board width and height from plane 0), and
  any extra coordinates a source supplies (SGF games: ``game_index``, ...);
- group attrs: format version, provenance, tensor size, the file table and
  ``committed_rows``.

Rows at or beyond ``committed_rows`` belong to an append that has not committed
(or was interrupted). Readers ignore them and the next ingest overwrites them, so
an append becomes visible in one step: the write of the group's ``zarr.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import dask.array as da
import fsspec
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import ZstdCodec
from zarr.errors import ZarrUserWarning

from kgzarr._version import __version__
from kgzarr.data.bits import unpack_planes
from kgzarr.data.npz import NPZ_ARRAYS
from kgzarr.errors import SourceChangedError, StoreFormatError

__all__ = [
    "FORMAT_VERSION",
    "ROW_ARRAYS",
    "PositionsStore",
    "StoreWriter",
    "normalize_store",
    "store_exists",
    "default_chunk_rows",
    "read_rows",
    "open_positions",
    "store_info",
    "verify_sources",
    "check_sources",
    "find_changed_sources",
    "write_rows",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1

# Per-row arrays every store has, besides the KataGo arrays.
ROW_ARRAYS: dict[str, str] = {"file_index": "int32", "source_row": "int32", "board_x": "int16", "board_y": "int16"}

# zstd level 7 gave 754 kB of chunks for the 774 kB of selfplay7 npz files
# (5.5 MB raw). zstd 3 gave 817 kB, and zstd 9 gave 741 kB at 1.6x the write
# time. Blosc-zstd 5 gave 778 kB with byte shuffle and 1289 kB with bitshuffle
# (zarr 3.1, numcodecs 0.16, chunks of 4096 rows).
COMPRESSORS = (ZstdCodec(level=7),)

# A chunk of packed planes of about 4 MiB: Dask spends roughly a millisecond
# per task, so much smaller chunks make overhead dominate an extraction, while
# an extraction task also keeps the unpacked planes (8x) and the network's
# activations for its rows, so much larger chunks cost memory per worker.
_TARGET_CHUNK_BYTES = 4 * 2**20
_MIN_CHUNK_ROWS = 256
_MAX_CHUNK_ROWS = 65536

_CONSOLIDATED_WARNING = "Consolidated metadata is currently not part"


def normalize_store(store: str | os.PathLike[str]) -> str:
    """Return a store location as zarr opens it: a local path, or an fsspec URL other than ``file://``."""
    text = os.fspath(store)
    if text.startswith("file://"):
        return text[len("file://"):]
    return text


def _is_local(url: str) -> bool:
    return "://" not in url


def store_exists(url: str) -> bool:
    """Return True when ``url`` has a root ``zarr.json`` (of any Zarr group or array)."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(f"{path.rstrip('/')}/zarr.json")


def default_chunk_rows(num_binary_features: int, tensor_side: int) -> int:
    """Return the largest power of two of rows whose packed planes fit in the target chunk bytes."""
    row_bytes = num_binary_features * ((tensor_side * tensor_side + 7) // 8)
    rows = 2 ** int(np.floor(np.log2(max(_TARGET_CHUNK_BYTES // row_bytes, 1))))
    return int(np.clip(rows, _MIN_CHUNK_ROWS, _MAX_CHUNK_ROWS))


def _open_group(url: str, mode: str, *, consolidated: bool = True) -> zarr.Group:
    try:
        return zarr.open_group(url, mode=mode, use_consolidated=None if consolidated else False)
    except (FileNotFoundError, KeyError) as exc:
        raise StoreFormatError(
            f"{url}: not a Zarr store (no zarr.json); create it with 'kgzarr ingest POSITIONS_DIR --store {url}'"
        ) from exc
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise StoreFormatError(f"{url}: not a readable Zarr v3 group ({exc}); check the path") from exc


def _check_format(url: str, attrs: Mapping[str, Any]) -> None:
    version = attrs.get("kgzarr_format_version")
    if version is None:
        raise StoreFormatError(
            f"{url}: a Zarr group but not a kgzarr positions store (no kgzarr_format_version attribute); "
            "give the path of a store made by 'kgzarr ingest', or a new path"
        )
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreFormatError(
            f"{url}: store format version {version!r} is newer than the {FORMAT_VERSION} this kgzarr "
            f"{__version__} reads; upgrade kgzarr, or ingest the positions again with --rebuild"
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class PositionsStore:
    """Read access to the committed rows of a positions store.

    Cheap to construct from a URL inside a Dask task: it reads one small
    ``zarr.json`` (holding the consolidated metadata) and no chunk data.
    """

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.url = normalize_store(store)
        self._group = _open_group(self.url, "r")
        self.attrs: dict[str, Any] = dict(self._group.attrs)
        _check_format(self.url, self.attrs)

    @property
    def num_rows(self) -> int:
        return int(self.attrs["committed_rows"])

    @property
    def chunk_rows(self) -> int:
        return int(self.attrs["chunk_rows"])

    @property
    def tensor_size(self) -> tuple[int, int]:
        height, width = self.attrs["tensor_size"]
        return int(height), int(width)

    @property
    def num_binary_features(self) -> int:
        return int(self.attrs["num_binary_features"])

    @property
    def num_global_features(self) -> int:
        return int(self.attrs["num_global_features"])

    @property
    def ingest_root(self) -> str:
        """The positions folder of the first ingest, as the user gave it."""
        return str(self.attrs["ingest_root"])

    @property
    def files(self) -> list[dict[str, Any]]:
        """The file table: ``path`` (relative to ingest_root), ``size``, ``sha256``, ``rows``, ``first_row``."""
        return list(self.attrs["files"])

    @property
    def kept_arrays(self) -> dict[str, str]:
        """Store array name -> KataGo npz key, for the KataGo arrays this store keeps."""
        return dict(self.attrs["arrays"])

    @property
    def row_coords(self) -> dict[str, dict[str, Any]]:
        """Extra per-row coordinates: name -> ``{"kind": "int"|"float"|"str", "categories": [...]}``."""
        return dict(self.attrs.get("row_coords", {}))

    @cached_property
    def content_fingerprint(self) -> str:
        """Short hash of the file table and tensor size; it changes whenever rows are added or replaced."""
        return self.prefix_fingerprint(len(self.files))

    def prefix_fingerprint(self, num_files: int) -> str:
        """Return the content fingerprint the store had when it held only its first ``num_files`` files.

        Ingest only appends, so a store that grew still has its earlier
        fingerprint as a prefix; a store whose early files were replaced does not.
        """
        files = self.files[:num_files]
        table = [(f["path"], f["sha256"], f["rows"], f["first_row"]) for f in files]
        rows = files[-1]["first_row"] + files[-1]["rows"] if files else 0
        payload = json.dumps([self.tensor_size, rows, table], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def array(self, name: str) -> zarr.Array:
        """Return one stored array (all its rows, including any uncommitted ones)."""
        return self._group[name]

    def source_paths(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Return each row's source file as ``os.path.join(ingest_root, relative path)``."""
        stop = self.num_rows if stop is None else stop
        paths = [os.path.join(self.ingest_root, entry["path"]) for entry in self.files]
        indices = self.read_rows(start, stop, names=("file_index",))["file_index"]
        return [paths[i] for i in indices]

    def read_rows(self, start: int, stop: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Read committed rows ``[start, stop)`` of the named arrays.

        By default: ``binary_input_packed``, ``global_input``, ``board_x`` and
        ``board_y``, which is what an extraction task needs.
        """
        if not 0 <= start <= stop <= self.num_rows:
            raise IndexError(
                f"{self.url}: rows [{start}, {stop}) are outside the {self.num_rows} committed rows; "
                "ask for a range inside 0..num_rows"
            )
        names = ("binary_input_packed", "global_input", "board_x", "board_y") if names is None else names
        return {name: self._group[name][start:stop] for name in names}


def read_rows(store_url: str, start: int, stop: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read rows ``[start, stop)`` of a store given only its path or URL (for use inside Dask tasks)."""
    return PositionsStore(store_url).read_rows(start, stop, names)


class StoreWriter:
    """Write access for one ingest, which must hold the store's lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._group = _open_group(url, "r+", consolidated=False)
        self.attrs: dict[str, Any] = dict(self._group.attrs)
        _check_format(url, self.attrs)

    @classmethod
    def create(
        cls,
        url: str,
        *,
        trailing_shapes: Mapping[str, tuple[int, ...]],
        tensor_side: int,
        chunk_rows: int,
        ingest_root: str,
    ) -> StoreWriter:
        """Create an empty store, replacing whatever the path holds, with one array per npz key given."""
        binary_shape = trailing_shapes["binaryInputNCHWPacked"]
        created = _now()
        attrs = {
            "kgzarr_format_version": FORMAT_VERSION,
            "kgzarr_version": __version__,
            "created": created,
            "updated": created,
            "tensor_size": [tensor_side, tensor_side],
            "num_binary_features": int(binary_shape[0]),
            "num_global_features": int(trailing_shapes["globalInputNC"][0]),
            "chunk_rows": int(chunk_rows),
            "ingest_root": ingest_root,
            "ingest_root_absolute": os.path.abspath(ingest_root) if _is_local(ingest_root) else ingest_root,
            "arrays": {NPZ_ARRAYS[key].store_name: key for key in trailing_shapes},
            "row_coords": {},
            "files": [],
            "committed_rows": 0,
        }
        # The group's attrs are written before the arrays, with zero committed
        # rows, so a creation cut short leaves a store that the next ingest
        # recognises as empty and creates again.
        group = zarr.open_group(url, mode="w", attributes=attrs)
        for key, trailing in trailing_shapes.items():
            group.create_array(
                NPZ_ARRAYS[key].store_name,
                shape=(0, *trailing),
                dtype=NPZ_ARRAYS[key].dtype,
                chunks=(chunk_rows, *trailing),
                compressors=COMPRESSORS,
                fill_value=0,
            )
        for name, dtype in ROW_ARRAYS.items():
            group.create_array(name, shape=(0,), dtype=dtype, chunks=(chunk_rows,), compressors=COMPRESSORS, fill_value=0)
        _consolidate(url)
        return cls(url)

    @property
    def committed_rows(self) -> int:
        return int(self.attrs["committed_rows"])

    @property
    def chunk_rows(self) -> int:
        return int(self.attrs["chunk_rows"])

    def trailing_shapes(self) -> dict[str, tuple[int, ...]]:
        """npz key -> shape after the row axis, for each kept KataGo array."""
        return {key: tuple(self._group[name].shape[1:]) for name, key in self.attrs["arrays"].items()}

    def ensure_coord(self, name: str, dtype: np.dtype, fill_value: Any) -> None:
        """Create a per-row coordinate array unless it exists; rows written before it read as ``fill_value``."""
        if name in self._group and name in self.attrs["row_coords"]:
            return
        self._group.create_array(
            name,
            shape=(self.committed_rows,),
            dtype=dtype,
            chunks=(self.chunk_rows,),
            compressors=COMPRESSORS,
            fill_value=fill_value,
            overwrite=True,
        )

    def resize(self, num_rows: int, names: Sequence[str]) -> None:
        """Set the row count of the named arrays; their rows past ``committed_rows`` are scratch space."""
        for name in names:
            array = self._group[name]
            if array.shape[0] != num_rows:
                array.resize((num_rows, *array.shape[1:]))

    def commit(self, *, files: list[dict[str, Any]], committed_rows: int, row_coords: Mapping[str, Any]) -> None:
        """Publish rows up to ``committed_rows`` and the file table in one write of the group's zarr.json."""
        # Consolidating first stores the new array shapes while committed_rows
        # still has its old value, which readers accept because they read
        # fewer rows than the arrays contain. The attrs update then writes zarr.json
        # once, carrying both the fresh consolidated metadata and the commit.
        _consolidate(self.url)
        group = zarr.open_group(self.url, mode="r+")
        update = {"files": files, "committed_rows": int(committed_rows), "row_coords": dict(row_coords), "updated": _now()}
        update["kgzarr_version"] = __version__
        group.attrs.update(update)
        self.attrs.update(update)
        self._group = _open_group(self.url, "r+", consolidated=False)


def _consolidate(url: str) -> None:
    # zarr 3.1 warns on every call that consolidated metadata is not yet in
    # the Zarr v3 specification. kgzarr uses it on purpose (one read opens a
    # store, which matters on object stores), so that one warning is silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CONSOLIDATED_WARNING, category=ZarrUserWarning)
        zarr.consolidate_metadata(url)


def write_rows(url: str, start: int, columns: Mapping[str, np.ndarray]) -> int:
    """Write one block of rows starting at row ``start`` into each named array; return the rows written."""
    num_rows = 0
    for name, values in columns.items():
        array = zarr.open_array(url, path=name, mode="r+")
        array[start:start + len(values)] = values
        num_rows = len(values)
    return num_rows


# ----------------------------------------------------------------- xarray view


def open_positions(store: str | os.PathLike[str]) -> xr.Dataset:
    """Open the committed rows of a store as a lazy, Dask-backed xarray Dataset.

    ``binary_input`` (position, feature, y, x) is unpacked chunk by chunk when
    computed. Opening reads the group's zarr.json only, never chunk data.
    """
    positions = PositionsStore(store)
    num_rows = positions.num_rows
    height, width = positions.tensor_size
    token = positions.content_fingerprint
    data_vars: dict[str, tuple[tuple[str, ...], da.Array]] = {}
    for name, key in positions.kept_arrays.items():
        lazy = _lazy_rows(positions, name, num_rows, token)
        if name == "binary_input_packed":
            data_vars["binary_input"] = (("position", "feature", "y", "x"), _lazy_unpack(lazy, height, width))
        else:
            data_vars[name] = (("position", *NPZ_ARRAYS[key].dims), lazy)

    coords: dict[str, tuple[tuple[str, ...], da.Array]] = {}
    file_index = _lazy_rows(positions, "file_index", num_rows, token)
    coords["source_file"] = (("position",), _lazy_decode(file_index, [entry["path"] for entry in positions.files]))
    for name in ("source_row", "board_x", "board_y"):
        coords[name] = (("position",), _lazy_rows(positions, name, num_rows, token))
    for name, spec in positions.row_coords.items():
        lazy = _lazy_rows(positions, name, num_rows, token)
        coords[name] = (("position",), _lazy_decode(lazy, spec["categories"]) if spec["kind"] == "str" else lazy)

    attrs = {
        "store": positions.url,
        "tensor_size": list(positions.tensor_size),
        "ingest_root": positions.ingest_root,
        "content_fingerprint": token,
        "kgzarr_format_version": positions.attrs["kgzarr_format_version"],
        "npz_keys": json.dumps(positions.kept_arrays),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _lazy_rows(positions: PositionsStore, name: str, num_rows: int, token: str) -> da.Array:
    array = positions.array(name)
    # An explicit name keeps Dask from hashing the zarr array to build a key.
    lazy = da.from_zarr(array, name=f"kgzarr-{name}-{token}")
    return lazy[:num_rows]


def _lazy_unpack(packed: da.Array, height: int, width: int) -> da.Array:
    chunks = (*packed.chunks[:2], (height,), (width,))
    return packed.map_blocks(
        unpack_planes, height, width, dtype=np.uint8, chunks=chunks, new_axis=3, meta=np.empty((0, 0, 0, 0), np.uint8)
    )


def _decode_codes(codes: np.ndarray, categories: np.ndarray) -> np.ndarray:
    # Code -1 marks a row whose source did not supply the value.
    table = np.append(categories, "").astype(object)
    return table[codes]


def _lazy_decode(codes: da.Array, categories: Sequence[str]) -> da.Array:
    table = np.asarray(list(categories), dtype=object)
    return codes.map_blocks(_decode_codes, table, dtype=object, meta=np.empty((0,), object))


# ------------------------------------------------------------ info and checks


def store_info(store: str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise a store: rows, files, tensor size, board sizes, arrays, chunking and bytes."""
    positions = PositionsStore(store)
    num_rows = positions.num_rows
    board_x = positions.array("board_x")[:num_rows]
    board_y = positions.array("board_y")[:num_rows]
    pairs, counts = np.unique(np.stack([board_x, board_y], axis=1), axis=0, return_counts=True) if num_rows else ([], [])
    board_sizes = {f"{x}x{y}": int(n) for (x, y), n in sorted(zip(map(tuple, pairs), counts), key=lambda item: -item[1])}

    arrays = {}
    raw_bytes = 0
    for name in [*positions.kept_arrays, *ROW_ARRAYS, *positions.row_coords]:
        array = positions.array(name)
        row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
        raw_bytes += row_bytes * num_rows
        arrays[name] = {
            "shape": [num_rows, *array.shape[1:]],
            "dtype": str(array.dtype),
            "chunks": list(array.chunks),
            "npz_key": positions.kept_arrays.get(name, ""),
        }

    disk_bytes = _bytes_on_disk(positions.url)
    source_bytes = sum(int(entry["size"]) for entry in positions.files)
    return {
        "store": positions.url,
        "format_version": positions.attrs["kgzarr_format_version"],
        "kgzarr_version": positions.attrs["kgzarr_version"],
        "created": positions.attrs["created"],
        "updated": positions.attrs["updated"],
        "rows": num_rows,
        "files": len(positions.files),
        "tensor_size": "x".join(map(str, positions.tensor_size)),
        "chunk_rows": positions.chunk_rows,
        "board_sizes": board_sizes,
        "arrays": arrays,
        "bytes_on_disk": disk_bytes,
        "bytes_uncompressed": raw_bytes,
        "compression_ratio": round(raw_bytes / disk_bytes, 2) if disk_bytes else None,
        "source_bytes": source_bytes,
        "size_vs_sources": round(disk_bytes / source_bytes, 3) if source_bytes else None,
        "ingest_root": positions.ingest_root,
        "content_fingerprint": positions.content_fingerprint,
    }


def _bytes_on_disk(url: str) -> int:
    fs, path = fsspec.core.url_to_fs(url)
    return int(fs.du(path, total=True))


def verify_sources(store: str | os.PathLike[str], positions_root: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the relative paths of source files that are missing or whose size or SHA-256 changed.

    ``positions_root`` replaces the store's ingest root, for data moved since ingest.
    """
    positions = PositionsStore(store)
    root = os.fspath(positions_root) if positions_root is not None else positions.attrs.get(
        "ingest_root_absolute", positions.ingest_root
    )
    changed = []
    for entry in positions.files:
        path = os.path.join(root, entry["path"])
        if not _same_content(path, int(entry["size"]), entry["sha256"]):
            changed.append(entry["path"])
    return changed


def check_sources(store: str | os.PathLike[str], positions_root: str | os.PathLike[str] | None = None) -> None:
    """Raise SourceChangedError when any source file of the store changed since it was ingested."""
    changed = verify_sources(store, positions_root)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise SourceChangedError(
            f"{normalize_store(store)}: {len(changed)} source files are missing or changed since ingest ({shown}); "
            "run 'kgzarr ingest' with --replace or --rebuild, or pass the folder they moved to"
        )


def find_changed_sources(
    store: PositionsStore | str | os.PathLike[str], positions_root: str | os.PathLike[str] | None = None
) -> tuple[list[str], list[str]]:
    """Return the relative paths of source files that changed, and of those that are missing, since ingest.

    This is the cheap check an extract runs: one ``stat`` per file. A file of
    another size has changed. A file of the recorded size whose modification
    time differs from the one recorded at ingest is hashed, and has changed
    only when its SHA-256 differs. File-table entries without a recorded time
    (stores written before kgzarr recorded it) are compared by size alone.
    Sources under a URL root are not checked.
    """
    positions = store if isinstance(store, PositionsStore) else PositionsStore(store)
    root = os.fspath(positions_root) if positions_root is not None else positions.attrs.get(
        "ingest_root_absolute", positions.ingest_root
    )
    if not _is_local(root):
        return [], []

    changed: list[str] = []
    missing: list[str] = []
    for entry in positions.files:
        path = os.path.join(root, entry["path"])
        try:
            status = os.stat(path)
        except OSError:
            missing.append(entry["path"])
            continue
        if status.st_size != int(entry["size"]):
            changed.append(entry["path"])
        elif entry.get("mtime_ns") not in (None, status.st_mtime_ns) and not _same_content(
            path, int(entry["size"]), entry["sha256"]
        ):
            changed.append(entry["path"])
    return changed, missing


def _same_content(path: str, size: int, sha256: str) -> bool:
    try:
        if os.path.getsize(path) != size:
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == sha256
