"""Appending self-play positions to a positions store, incrementally and atomically.

One ingest lists the inputs: ``*.npz`` found recursively, in sorted order, plus
SGF files given by name. It takes the store's write lock and reads, hashes and
validates every new file as Dask tasks. Then it appends the rows chunk by chunk
and commits the file table. Inputs already in the file table with the same SHA-256 are skipped,
so running ingest again on a growing folder adds only the new files.

Any source can be appended: a loader returns a :class:`RowBatch` (arrays keyed
by KataGo's npz names plus per-row coordinates), and the writer handles every
batch alike.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace as dataclass_replace
from typing import Any

import dask
import fsspec
import numpy as np
from dask.callbacks import Callback

from kgzarr.data.append import RowBatch, append_batches, create_store
from kgzarr.data.bits import board_sizes
from kgzarr.data.discovery import SGF_SUFFIXES, InputFile, discover_inputs, relative_path
from kgzarr.data.lock import StoreLock
from kgzarr.data.npz import parse_npz_bytes, validate_arrays
from kgzarr.data.store import (
    PositionsStore,
    StoreWriter,
    normalize_store,
    store_exists,
)
from kgzarr.errors import (
    ConfigError,
    PositionsFileError,
    SgfError,
    SourceChangedError,
    StoreFormatError,
)

__all__ = ["IngestReport", "RowBatch", "ingest", "discover_inputs"]

logger = logging.getLogger(__name__)

# Tensor side for SGF games when neither --board-size nor an existing store sets one.
DEFAULT_SGF_TENSOR_SIDE = 19

# Input bytes (files on disk) loaded and committed together. Each commit
# keeps its batches in memory, about 7x their npz size once decompressed, so
# this bounds an ingest's memory at a few GB whatever the folder size.
DEFAULT_MAX_BATCH_BYTES = 512 * 2**20

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestReport:
    """Outcome of one ingest. ``files_rejected`` contains (path, reason) pairs."""

    store: str
    files_added: int
    files_skipped: int
    files_rejected: tuple[tuple[str, str], ...]
    rows_added: int
    rows_total: int
    bytes_read: int
    seconds: float

    def summary(self) -> str:
        """Return the report as one line."""
        rate = self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0
        return (
            f"{self.store}: {self.files_added} files added ({self.rows_added} rows), "
            f"{self.files_skipped} already present, {len(self.files_rejected)} rejected; "
            f"{self.rows_total} rows in total; read {self.bytes_read / 1e6:.1f} MB in {self.seconds:.2f} s ({rate:.1f} MB/s)"
        )


@dataclass(frozen=True)
class _Loaded:
    """The outcome of one load task; ``batch`` is None when the arrays were not kept."""

    input: InputFile
    size: int
    sha256: str
    status: str  # "new", "same", "changed" or "rejected"
    num_rows: int = 0
    tensor_side: int = 0
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # npz key -> shape after the row axis
    error: str = ""
    batch: RowBatch | None = None
    ignored_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Options:
    board_size: int | None  # the user's --board-size
    sgf_positions: Any
    sgf_rules: Any
    store_side: int | None = None  # tensor side of the store being appended to

    @property
    def tensor_side(self) -> int | None:
        return self.board_size if self.board_size is not None else self.store_side


def ingest(
    positions: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    board_size: int | None = None,
    chunk_rows: int | None = None,
    workers: int | None = None,
    replace: bool = False,
    rebuild: bool = False,
    skip_bad: bool = False,
    scheduler: Any = None,
    progress: ProgressCallback | None = None,
    lock_timeout: float = 0.0,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    include_sgf: bool = False,
    sgf_positions: Any = "all",
    sgf_rules: Any = None,
) -> IngestReport:
    """Append the rows of new self-play files to a positions store, creating it if needed.

    ``positions`` is a folder (searched recursively for ``*.npz``, and for
    ``*.sgf``/``*.sgfs`` too when ``include_sgf``), one file, or a list of both.
    ``board_size`` asserts the tensor side. ``chunk_rows`` sets the rows per
    chunk of a new store. ``scheduler`` is any Dask scheduler (default
    ``"threads"``) and ``workers`` its worker count. ``replace`` accepts files
    whose content changed since ingest; ``rebuild`` deletes the store first;
    ``skip_bad`` skips invalid files instead of raising. ``lock_timeout`` is in
    seconds (0: fail at once when another ingest holds the store).
    ``progress(done, total)`` counts files.
    """
    started = time.perf_counter()
    url = normalize_store(store)
    root, inputs = discover_inputs(positions, include_sgf=include_sgf)
    options = _Options(board_size, sgf_positions, sgf_rules)
    run = _Run(url, root, inputs, options, scheduler, workers, progress, max_batch_bytes)

    with StoreLock(url, timeout=lock_timeout, command="ingest"):
        _remove_partial_files(url)
        if rebuild:
            _delete_store(url)
        writer = _open_writer(url)
        run.rebase(writer)
        if replace:
            run.truncate_before_changed(writer)
        report = run.append_all(writer, chunk_rows=chunk_rows, skip_bad=skip_bad)

    report = dataclass_replace(report, seconds=time.perf_counter() - started)
    logger.info("ingest %s", report.summary())
    return report


def _remove_partial_files(url: str) -> None:
    """Delete temporary files that a killed zarr write left inside a local store."""
    if "://" in url or not os.path.isdir(url):
        return
    for folder, _, names in os.walk(url):
        for name in names:
            if name.endswith(".partial"):
                os.remove(os.path.join(folder, name))
                logger.debug("removed %s left by an interrupted write", os.path.join(folder, name))


def _delete_store(url: str) -> None:
    if not store_exists(url):
        return
    try:
        PositionsStore(url)
    except StoreFormatError as exc:
        if "newer than" not in str(exc):
            raise StoreFormatError(f"{exc}; --rebuild deletes only kgzarr stores") from exc
    fs, path = fsspec.core.url_to_fs(url)
    fs.rm(path, recursive=True)
    logger.info("deleted %s to rebuild it", url)


def _open_writer(url: str) -> StoreWriter | None:
    """Open an existing store for appending, or return None when a new one must be created."""
    if not store_exists(url):
        if "://" not in url and os.path.isdir(url) and os.listdir(url):
            raise StoreFormatError(
                f"{url}: the folder exists, is not empty and is not a Zarr store; give a new or empty path for the store"
            )
        return None
    writer = StoreWriter(url)
    # A store whose first ingest never committed contains nothing to keep, and
    # starting over lets this run choose its layout afresh.
    return writer if writer.attrs["files"] else None


class _Run:
    """The state of one ingest: inputs, what the store already holds, and the counts for the report."""

    def __init__(
        self,
        url: str,
        root: str,
        inputs: list[InputFile],
        options: _Options,
        scheduler: Any,
        workers: int | None,
        progress: ProgressCallback | None,
        max_batch_bytes: int,
    ) -> None:
        self.url = url
        self.root = root
        self.inputs = inputs
        self.options = options
        self.scheduler = scheduler or "threads"
        self.workers = workers
        self.progress = progress
        self.max_batch_bytes = max_batch_bytes
        self.table: list[dict[str, Any]] = []
        self.files_added = 0
        self.rows_added = 0

    # ---------------------------------------------------------------- setup

    def rebase(self, writer: StoreWriter | None) -> None:
        """Express input paths relative to the store's ingest root and load its file table."""
        if writer is None:
            return
        self.table = list(writer.attrs["files"])
        store_root = writer.attrs["ingest_root_absolute"]
        if os.path.abspath(self.root) != store_root:
            logger.info("recording paths relative to the store's ingest root %s, not %s", store_root, self.root)
        self.inputs = [InputFile(entry.path, relative_path(entry.path, store_root)) for entry in self.inputs]
        self.root = writer.attrs["ingest_root"]
        self.options = dataclass_replace(self.options, store_side=int(writer.attrs["tensor_size"][0]))

    def truncate_before_changed(self, writer: StoreWriter | None) -> None:
        """Commit the store back to just before its first changed file, so that file and all later ones are appended again."""
        if writer is None:
            return
        loaded = self._load(self.inputs, keep_arrays=False)
        changed = {item.input.relative_path for item in loaded if item.status == "changed"}
        if not changed:
            return
        first = min(index for index, entry in enumerate(self.table) if entry["path"] in changed)
        present = {item.relative_path for item in self.inputs}
        missing = [entry["path"] for entry in self.table[first:] if entry["path"] not in present]
        if missing:
            raise ConfigError(
                f"{self.url}: cannot replace {self.table[first]['path']} because files ingested after it are not "
                f"among this run's inputs ({', '.join(missing[:3])}); ingest the whole folder, or use --rebuild"
            )
        logger.info("replacing %d changed files: rows from %d on are appended again", len(changed), self.table[first]["first_row"])
        self.table = self.table[:first]
        committed = self.table[-1]["first_row"] + self.table[-1]["rows"] if self.table else 0
        writer.commit(files=self.table, committed_rows=committed, row_coords=writer.attrs["row_coords"])

    # ---------------------------------------------------------------- loading

    def _load(self, inputs: Sequence[InputFile], *, keep_arrays: bool) -> list[_Loaded]:
        known = {entry["path"]: entry["sha256"] for entry in self.table}
        tasks = [
            dask.delayed(_load_input, pure=False)(
                item, known.get(item.relative_path), self.options, keep_arrays, dask_key_name=f"kgzarr-load-{index}"
            )
            for index, item in enumerate(inputs)
        ]
        with _FileProgress(self.progress, len(inputs)):
            return list(dask.compute(*tasks, **self._compute_kwargs()))

    def _compute_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"scheduler": self.scheduler}
        if self.workers is not None and isinstance(self.scheduler, str):
            kwargs["num_workers"] = self.workers
        return kwargs

    # ---------------------------------------------------------------- appending

    def append_all(self, writer: StoreWriter | None, *, chunk_rows: int | None, skip_bad: bool) -> IngestReport:
        """Validate every input, then append the new ones in groups, committing after each group."""
        groups = _split_by_bytes(self.inputs, self.max_batch_bytes)
        # With one group the validating read keeps its arrays for writing. With
        # several, every file is validated before the first commit and read
        # again when its group is written, which bounds memory.
        keep_arrays = len(groups) == 1
        loaded = self._load(self.inputs, keep_arrays=keep_arrays)
        new, skipped, rejected = self._classify(loaded, writer)
        if rejected and not skip_bad:
            more = f" ({len(rejected) - 1} more files are invalid too)" if len(rejected) > 1 else ""
            raise PositionsFileError(f"{rejected[0][1]}{more}; nothing from this run was committed")
        for path, reason in rejected:
            logger.warning("skipped invalid file %s: %s", path, reason)

        for group in groups:
            paths = {entry.relative_path for entry in group}
            group_new = [item for item in new if item.input.relative_path in paths]
            if not group_new:
                continue
            if not keep_arrays:
                reloaded = self._load([item.input for item in group_new], keep_arrays=True)
                self._require_same_content(reloaded, group_new)
                group_new = reloaded
            writer = self._append_group(writer, [item.batch for item in group_new], chunk_rows)

        return IngestReport(
            store=self.url,
            files_added=self.files_added,
            files_skipped=skipped,
            files_rejected=tuple(rejected),
            rows_added=self.rows_added,
            rows_total=writer.committed_rows if writer is not None else 0,
            bytes_read=sum(item.size for item in loaded),
            seconds=0.0,
        )

    def _classify(self, loaded: list[_Loaded], writer: StoreWriter | None) -> tuple[list[_Loaded], int, list[tuple[str, str]]]:
        stored_shas = {entry["sha256"]: entry["path"] for entry in self.table}
        schema = _Schema.from_writer(writer)
        new: list[_Loaded] = []
        skipped = 0
        rejected: list[tuple[str, str]] = []
        for item in loaded:
            if item.status == "changed":
                raise SourceChangedError(
                    f"{item.input.path}: content changed since it was ingested into {self.url} "
                    f"(SHA-256 now {item.sha256[:12]}...); use --replace to ingest the new content or --rebuild"
                )
            if item.status == "rejected":
                rejected.append((item.input.path, item.error))
                continue
            if item.status == "same" or item.sha256 in stored_shas:
                if item.status != "same":
                    logger.info("skipping %s: same content as %s", item.input.path, stored_shas[item.sha256])
                skipped += 1
                continue
            problem = schema.check(item)
            if problem:
                rejected.append((item.input.path, problem))
                continue
            if item.ignored_keys:
                logger.info("%s: arrays %s are not stored", item.input.path, ", ".join(item.ignored_keys))
            stored_shas[item.sha256] = item.input.relative_path
            new.append(item)
        return new, skipped, rejected

    def _require_same_content(self, reloaded: list[_Loaded], validated: list[_Loaded]) -> None:
        expected = {item.input.relative_path: item.sha256 for item in validated}
        for item in reloaded:
            if item.status != "new" or item.sha256 != expected[item.input.relative_path]:
                raise SourceChangedError(
                    f"{item.input.path}: changed while this ingest ran (validated, then read again with a different "
                    "SHA-256); run ingest again once the file is complete"
                )

    def _append_group(self, writer: StoreWriter | None, batches: list[RowBatch], chunk_rows: int | None) -> StoreWriter:
        if writer is None:
            writer = create_store(self.url, batches[0], self.root, chunk_rows)
            self.table = []
        entries = append_batches(writer, batches, self.table, self.scheduler, self._compute_kwargs())
        self.table.extend(entries)
        self.files_added += len(batches)
        self.rows_added += sum(batch.num_rows for batch in batches)
        return writer


def _split_by_bytes(inputs: list[InputFile], max_bytes: int) -> list[list[InputFile]]:
    groups: list[list[InputFile]] = [[]]
    group_bytes = 0
    for item in inputs:
        try:
            size = os.path.getsize(item.path)
        except OSError:
            size = 0  # the load task reports the file as unreadable
        if groups[-1] and group_bytes + size > max_bytes:
            groups.append([])
            group_bytes = 0
        groups[-1].append(item)
        group_bytes += size
    return groups


class _FileProgress(Callback):
    """Reports each finished load task to the run's progress callback (local schedulers only)."""

    def __init__(self, progress: ProgressCallback | None, total: int) -> None:
        super().__init__()
        self._progress = progress
        self._total = total
        self._done = 0

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if self._progress is not None and isinstance(key, str) and key.startswith("kgzarr-load-"):
            self._done += 1
            self._progress(self._done, self._total)


@dataclass
class _Schema:
    """The tensor side and array shapes a batch must match to join a store."""

    tensor_side: int | None
    trailing_shapes: dict[str, tuple[int, ...]]

    @classmethod
    def from_writer(cls, writer: StoreWriter | None) -> _Schema:
        if writer is None:
            return cls(None, {})
        return cls(int(writer.attrs["tensor_size"][0]), writer.trailing_shapes())

    def check(self, item: _Loaded) -> str:
        """Return why the batch cannot join the store, or "" when it can; the first batch sets the schema."""
        shapes = item.shapes
        if self.tensor_side is None:
            self.tensor_side = item.tensor_side
            self.trailing_shapes.update(shapes)
            return ""
        if item.tensor_side != self.tensor_side:
            return (
                f"{item.input.path}: tensor size {item.tensor_side}x{item.tensor_side} differs from the store's "
                f"{self.tensor_side}x{self.tensor_side}; ingest it into another store"
            )
        for key, trailing in self.trailing_shapes.items():
            if key not in shapes:
                return (
                    f"{item.input.path}: lacks array {key}, which the store keeps for every row; "
                    "ingest it into another store"
                )
            if shapes[key] != trailing:
                return (
                    f"{item.input.path}: array {key} has rows of shape {shapes[key]}, the store's are {trailing} "
                    "(a different channel count or format version); ingest it into another store"
                )
        return ""


# ---------------------------------------------------------------- load tasks


def _load_input(item: InputFile, known_sha256: str | None, options: _Options, keep_arrays: bool) -> _Loaded:
    """Read, hash and validate one input file (a Dask task)."""
    try:
        with open(item.path, "rb") as handle:
            data = handle.read()
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
    except OSError as exc:
        error = f"{item.path}: cannot be read ({exc.strerror}); check that it exists and is readable, or use --skip-bad"
        return _Loaded(item, 0, "", "rejected", error=error)
    sha256 = hashlib.sha256(data).hexdigest()
    if known_sha256 is not None:
        return _Loaded(item, len(data), sha256, "same" if sha256 == known_sha256 else "changed")

    try:
        if item.path.endswith(SGF_SUFFIXES):
            arrays, coords, ignored = _read_sgf(item, options)
        else:
            arrays, ignored = parse_npz_bytes(data, source=item.path)
            coords = {}
        side = validate_arrays(arrays, source=item.path, board_size=options.board_size, store_side=options.store_side)
        coords = _board_coords(arrays, coords, side, item.path)
    except (PositionsFileError, SgfError) as exc:
        return _Loaded(item, len(data), sha256, "rejected", error=str(exc))

    arrays = {key: _native(array) for key, array in arrays.items()}
    batch = RowBatch(item.path, item.relative_path, arrays, coords, len(data), sha256, side, mtime_ns) if keep_arrays else None
    return _Loaded(
        item,
        len(data),
        sha256,
        "new",
        num_rows=int(arrays["globalInputNC"].shape[0]),
        tensor_side=side,
        shapes={key: tuple(array.shape[1:]) for key, array in arrays.items()},
        batch=batch,
        ignored_keys=ignored,
    )


def _native(array: np.ndarray) -> np.ndarray:
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _board_coords(
    arrays: Mapping[str, np.ndarray], coords: Mapping[str, np.ndarray], side: int, source: str
) -> dict[str, np.ndarray]:
    """Add board_x and board_y from plane 0, checking them against any the source supplied."""
    board_x, board_y = board_sizes(arrays["binaryInputNCHWPacked"], side, side)
    result = dict(coords)
    for name, measured in (("board_x", board_x), ("board_y", board_y)):
        given = result.get(name)
        if given is not None and not np.array_equal(np.asarray(given), measured):
            row = int(np.flatnonzero(np.asarray(given) != measured)[0])
            raise PositionsFileError(
                f"{source}: row {row} has {name} {given[row]} in its coordinates but {measured[row]} on the "
                "on-board plane (plane 0); the featurizer placed the board wrongly"
            )
        result[name] = measured
    return result


def _read_sgf(item: InputFile, options: _Options) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], tuple[str, ...]]:
    pos_len = options.tensor_side
    if pos_len is None:
        # 19x19 tensors hold every board KataGo plays; smaller games waste
        # space in them but pool to the same values, since pooling covers
        # on-board points only.
        pos_len = DEFAULT_SGF_TENSOR_SIDE
        logger.info("%s: featurizing into %dx%d tensors; pass --board-size to choose another size", item.path, pos_len, pos_len)
    try:
        from kgzarr.data.sgf_source import read_sgf_positions
    except ModuleNotFoundError as exc:
        if exc.name != "kgzarr.data.sgf_source":
            raise
        # NOTE: hook for the SGF reader, which lives in kgzarr.data.sgf_source;
        # until that module exists, SGF inputs are rejected here.
        raise PositionsFileError(
            f"{item.path}: reading SGF files needs kgzarr.data.sgf_source, which this kgzarr lacks; "
            "convert the games to KataGo .npz files first"
        ) from exc
    batch = read_sgf_positions(
        item.path, pos_len=pos_len, positions=options.sgf_positions, rules=options.sgf_rules, skip_bad=False
    )
    arrays = {key: np.asarray(value) for key, value in batch.arrays.items()}
    coords = {key: np.asarray(value) for key, value in batch.coords.items()}
    if not len(arrays.get("globalInputNC", ())):
        raise PositionsFileError(f"{item.path}: no positions could be read from the games; check the SGF file")
    return arrays, coords, ()
