"""``extract()``: one forward pass into the store, then statistics, transforms and output files.

Steps:

1. Resolve and check the options.
2. Under the store's write lock, compute the raw pooled values of every
   chunk the store does not contain yet, all requested layers in the same
   forward pass.
3. Compute column statistics as Dask reductions over the stored values.
4. Stream ``pooled_<layer>.npy`` chunk by chunk, then write the position
   index and the meta, all in a staging folder, and move them into place
   together (see :mod:`kgzarr.extraction.outputs`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

from kgzarr.data.lock import StoreLock
from kgzarr.data.store import PositionsStore, find_changed_sources
from kgzarr.errors import ConfigError, ConstantColumnError, SourceChangedError
from kgzarr.extraction.chunks import ChunkJob
from kgzarr.extraction.cluster import open_scheduler
from kgzarr.extraction.device import resolve_device, resolve_precision
from kgzarr.extraction.meta import LayerResult, RunSettings, build_meta
from kgzarr.extraction.outputs import (
    CSV_NAME,
    INDEX_NAME,
    META_NAME,
    StagedOutputs,
    check_outputs_absent,
    npy_name,
    recover_staged_outputs,
    write_json,
    write_npy_blocks,
    write_pos_index,
)
from kgzarr.extraction.pipeline import (
    LayerPlan,
    check_batch_size,
    check_chunk_rows,
    check_pooling_fits,
    load_network,
    plan_layers,
)
from kgzarr.extraction.pooling import parse_pooling
from kgzarr.extraction.raw import RawArray, prepare_raw, write_raw_chunk
from kgzarr.extraction.scheduling import SchedulerChoice, run_tasks
from kgzarr.extraction.selection import read_layer_selection
from kgzarr.extraction.stats import column_stats
from kgzarr.extraction.transforms import ColumnTransform, apply_nonneg, check_modes, plan_offsets, plan_transform
from kgzarr.extraction.worker import network_ref

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = ["ExtractReport", "extract"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

# Store made for --positions-dir when no --store is given, inside the output folder.
DEFAULT_STORE_NAME = "positions.zarr"


@dataclass(frozen=True)
class ExtractReport:
    """Summary of one extract: files written, sizes and timing.

    ``forward_rows`` counts rows that went through the network in this run,
    and ``reused_rows`` rows whose raw pooled values the store already
    contained. Layers that share a forward pass count each row once.
    """

    out: Path
    files: tuple[Path, ...]
    layers: tuple[str, ...]
    rows: int
    columns: dict[str, int]
    seconds: float
    rows_per_second: float
    forward_rows: int
    reused_rows: int
    store: str
    constant_columns: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def summary(self) -> str:
        """Return a one-line description for the command line."""
        shapes = ", ".join(f"{layer} {self.rows}×{columns}" for layer, columns in self.columns.items())
        return (
            f"extracted {shapes} into {self.out} in {self.seconds:.1f} s ({self.rows_per_second:.0f} rows/s; "
            f"{self.forward_rows} rows through the network, {self.reused_rows} reused from {self.store})"
        )


def extract(
    *,
    model: str | os.PathLike[str] | KataGoNet,
    store: str | os.PathLike[str] | None = None,
    layers: Sequence[str] | None = None,
    layer_selection: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "activations",
    batch_size: int = 512,
    device: str = "auto",
    precision: str = "fp32",
    pooling: str = "mean",
    nonneg: str = "shift",
    scale: str = "max",
    strict: bool = False,
    scheduler: Any = None,
    chunk_rows: int | None = None,
    overwrite: bool = False,
    positions_dir: str | os.PathLike[str] | None = None,
    board_size: int | None = None,
    progress: ProgressCallback | None = None,
    allow_changed_sources: bool = False,
    compile_blocks: bool = False,
) -> ExtractReport:
    """Extract pooled activations of ``layers`` for every store row into ``out``.

    Without ``store``, ``positions_dir`` is ingested into ``<out>/positions.zarr``
    (an up-to-date store there is reused). Without ``layers``, the layer comes
    from ``layer_selection`` (default ``./layer_selection.yml``).
    ``progress(rows_done, rows_total)`` follows the forward pass. A source
    file that changed since ingest raises SourceChangedError unless
    ``allow_changed_sources``, because the position index would name rows
    that the file no longer contains. Missing source files are only logged.
    ``compile_blocks`` runs the trunk blocks through ``torch.compile`` in
    every worker: faster on large runs, but compiling takes seconds to a
    minute per process, so it is off by default.
    """
    started = time.perf_counter()
    check_modes(nonneg, scale)
    pooling_mode = parse_pooling(pooling)
    check_batch_size(batch_size)
    device = resolve_device(device)
    resolve_precision(precision, device)
    requested = _requested_layers(layers, layer_selection)

    out_path = Path(out)
    names = [npy_name(layer) for layer in requested] + [META_NAME, INDEX_NAME, CSV_NAME]
    recover_staged_outputs(out_path)
    check_outputs_absent(out_path, names, overwrite)

    positions = _open_store(store, positions_dir, board_size, out_path)
    if positions.num_rows == 0:
        raise ConfigError(f"store {positions.url} has no positions; ingest self-play files into it first")
    _check_sources(positions, allow_changed_sources)
    net = load_network(model, device)
    plans = plan_layers(net, requested, positions.tensor_size[0])
    check_pooling_fits(positions, pooling_mode)

    if chunk_rows is not None:
        check_chunk_rows(chunk_rows)
    network = network_ref(net, device, compiled=compile_blocks)
    with StoreLock(positions.url, command="extract"), open_scheduler(scheduler, device, network) as choice:
        rows_per_chunk = chunk_rows or _default_task_rows(positions.num_rows, positions.chunk_rows, choice.workers)
        targets = [
            prepare_raw(
                positions,
                sha256=net.sha256,
                canonical_layer=plan.canonical,
                channels=plan.channels,
                pooling=pooling_mode,
                precision=precision,
                chunk_rows=rows_per_chunk,
                model_name=net.name,
            )
            for plan in plans
        ]
        tasks = _chunk_tasks(targets)
        job = ChunkJob(
            positions.url,
            network,
            tuple(plan.canonical for plan in plans),
            pooling_mode,
            batch_size,
            precision,
            choice.threads_for(len(tasks)),
        )
        forward_rows = _compute_missing(job, tasks, targets, choice, progress)

    with StagedOutputs(out_path) as staged:
        results = [_write_layer(staged, plan, target, nonneg, scale, strict) for plan, target in zip(plans, targets)]
        _write_index(staged, positions)

        seconds = time.perf_counter() - started
        settings = RunSettings(
            pooling_mode, batch_size, device, precision, choice.name, seconds, forward_rows, positions.num_rows - forward_rows
        )
        write_json(staged.path(META_NAME), build_meta(net, positions, results, settings))
        staged.commit()

    report = ExtractReport(
        out=out_path,
        files=tuple(out_path / name for name in names),
        layers=tuple(requested),
        rows=positions.num_rows,
        columns={plan.requested: result.transform.out_columns for plan, result in zip(plans, results)},
        seconds=seconds,
        rows_per_second=positions.num_rows / seconds if seconds > 0 else 0.0,
        forward_rows=forward_rows,
        reused_rows=positions.num_rows - forward_rows,
        store=positions.url,
        constant_columns={plan.requested: result.transform.zero_columns for plan, result in zip(plans, results)},
    )
    logger.info("%s", report.summary())
    return report


def _requested_layers(layers: Sequence[str] | None, layer_selection: str | os.PathLike[str] | None) -> list[str]:
    if layers and layer_selection is not None:
        raise ConfigError("give layers (--layer) or a layer-selection file (--layer-selection), not both")
    if layers:
        return [layers] if isinstance(layers, str) else list(layers)

    selection = read_layer_selection(layer_selection if layer_selection is not None else "layer_selection.yml")
    logger.info("layer %s chosen by %s", selection.chosen_layer, selection.path)
    return [selection.chosen_layer]


def _open_store(
    store: str | os.PathLike[str] | None,
    positions_dir: str | os.PathLike[str] | None,
    board_size: int | None,
    out: Path,
) -> PositionsStore:
    if store is None and positions_dir is None:
        raise ConfigError("no positions given; pass --store STORE, or --positions-dir FOLDER to ingest one")

    if positions_dir is not None:
        from kgzarr.data.ingest import ingest

        target = os.fspath(store) if store is not None else os.fspath(out / DEFAULT_STORE_NAME)
        report = ingest(positions_dir, target, board_size=board_size)
        logger.info("store %s: %d rows added, %d in total", target, report.rows_added, report.rows_total)
        store = target

    positions = PositionsStore(store)
    if board_size is not None and positions.tensor_size != (board_size, board_size):
        raise ConfigError(
            f"store {positions.url} contains {positions.tensor_size[0]}x{positions.tensor_size[1]} tensors, "
            f"but --board-size is {board_size}; pass the matching board size or another store"
        )
    return positions


def _chunk_tasks(targets: Sequence[RawArray]) -> list[tuple[tuple[RawArray, ...], int]]:
    """Return (targets lacking the chunk, chunk index) for every chunk that any target lacks."""
    tasks = []
    for rows_per_chunk in sorted({target.chunk_rows for target in targets}):
        group = [target for target in targets if target.chunk_rows == rows_per_chunk]
        for index in sorted(set().union(*(target.missing for target in group))):
            lacking = tuple(target for target in group if index in target.missing)
            tasks.append((lacking, index))
    return tasks


def _compute_missing(
    job: ChunkJob,
    tasks: Sequence[tuple[tuple[RawArray, ...], int]],
    targets: Sequence[RawArray],
    choice: SchedulerChoice,
    progress: ProgressCallback | None,
) -> int:
    """Run the chunk tasks; return the rows passed through the network."""
    calls = [(write_raw_chunk, (job, lacking, index)) for lacking, index in tasks]
    total = _missing_rows(targets)
    done = 0

    def report_chunk(index: int, rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    results = run_tasks(calls, choice, report_chunk)
    logger.info("forward pass: %d rows in %d chunk tasks", sum(results), len(tasks))
    return int(sum(results))


# Minimum rows per task. Below this, per-task costs (opening the store,
# scheduling, a short forward batch) outweigh the gain from keeping every
# worker busy, as measured in docs/benchmarks.md.
MIN_TASK_ROWS = 2048


def _default_task_rows(num_rows: int, store_chunk_rows: int, workers: int) -> int:
    """Return rows per task: the store's chunk, split so each worker gets about two tasks on small stores.

    One task per store chunk leaves workers idle when a store has fewer
    chunks than workers. Two tasks per worker also let one task's reading
    overlap another's forward pass.
    """
    wanted = math.ceil(num_rows / (2 * max(1, workers)))
    rounded = math.ceil(wanted / 256) * 256
    return min(store_chunk_rows, max(MIN_TASK_ROWS, rounded))


def _missing_rows(targets: Sequence[RawArray]) -> int:
    rows = 0
    for rows_per_chunk in {target.chunk_rows for target in targets}:
        group = [target for target in targets if target.chunk_rows == rows_per_chunk]
        bounds = group[0].bounds
        for index in set().union(*(target.missing for target in group)):
            rows += bounds[index][1] - bounds[index][0]
    return rows


def _check_sources(positions: PositionsStore, allow_changed: bool) -> None:
    changed, missing = find_changed_sources(positions)
    if missing:
        logger.warning(
            "%d source files of %s are missing (first: %s); pos_index_to_npz.txt still names them",
            len(missing), positions.url, missing[0],
        )
    if not changed:
        return
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    if allow_changed:
        logger.warning("%d source files changed since ingest (%s); extracting anyway as asked", len(changed), shown)
        return
    raise SourceChangedError(
        f"{positions.url}: {len(changed)} source files changed since ingest ({shown}), so the position index would "
        f"name rows those files no longer hold; run 'kgzarr ingest {positions.ingest_root} --store {positions.url} "
        "--replace' to ingest the new content, or pass --allow-changed-sources to extract the stored rows anyway"
    )


def _write_layer(staged: StagedOutputs, plan: LayerPlan, target: RawArray, nonneg: str, scale: str, strict: bool) -> LayerResult:
    raw = target.values()
    raw_stats = column_stats(raw, scheduler="threads")
    offsets = plan_offsets(nonneg, raw_stats)
    transformed = column_stats(apply_nonneg(raw, nonneg, offsets), scheduler="threads")
    transform = plan_transform(nonneg, scale, offsets, transformed)
    _check_zero_columns(plan, transform, strict)

    stored = zarr.open_array(target.store_url, path=f"{target.path}/values", mode="r")
    blocks = ((start, transform.apply(stored[start:stop])) for start, stop in target.bounds)
    write_npy_blocks(staged.path(npy_name(plan.requested)), (target.num_rows, transform.out_columns), blocks)
    return LayerResult(plan, raw_stats, transform, target.path)


def _check_zero_columns(plan: LayerPlan, transform: ColumnTransform, strict: bool) -> None:
    zero = transform.zero_columns
    if not zero:
        return
    shown = ", ".join(map(str, zero[:20])) + (" ..." if len(zero) > 20 else "")
    if strict:
        raise ConstantColumnError(
            f"layer {plan.requested}: {len(zero)} pooled columns are all zero after the {transform.nonneg} "
            f"transform (columns {shown}); drop --strict to keep them as zeros, or pick another layer"
        )
    logger.warning(
        "layer %s: %d pooled columns are all zero after the %s transform and stay zero (columns %s)",
        plan.requested, len(zero), transform.nonneg, shown,
    )


def _write_index(staged: StagedOutputs, positions: PositionsStore) -> None:
    rows = positions.read_rows(0, positions.num_rows, names=("file_index", "source_row", "board_x", "board_y"))
    # Path joining, as the step-3 script built its paths from the positions folder.
    root = positions.ingest_root
    npz_paths = [_source_path(root, entry["path"]) for entry in positions.files]
    folder = staged.path(INDEX_NAME).parent
    staged.path(CSV_NAME)
    write_pos_index(folder, npz_paths, rows["file_index"], rows["source_row"], rows["board_x"], rows["board_y"])


def _source_path(root: str, relative: str) -> str:
    if "://" in root:
        return f"{root.rstrip('/')}/{relative}"
    return str(Path(root) / relative)
