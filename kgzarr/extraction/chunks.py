"""The chunk task: read rows of the store, unpack, run the network, pool.

Tasks receive a :class:`ChunkJob` of plain values (store URL, a
:class:`~kgzarr.extraction.worker.NetworkRef`, layer names, pooling and sizes),
so a task graph stays small and picklable for any scheduler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from kgzarr.data.bits import unpack_planes
from kgzarr.data.store import PositionsStore
from kgzarr.extraction.device import PRECISIONS
from kgzarr.extraction.forward import pool_positions
from kgzarr.extraction.pooling import Pooling
from kgzarr.extraction.worker import NetworkRef, batch_size_limit, get_network, limit_batch_size

__all__ = ["ChunkJob", "pool_chunk", "chunk_bounds", "describe_position"]


@dataclass(frozen=True)
class ChunkJob:
    """Everything a chunk task needs, as plain picklable values.

    ``layers`` are canonical layer names; ``torch_threads`` is the worker's
    share of the CPU cores (see :mod:`kgzarr.extraction.scheduling`).
    """

    store_url: str
    network: NetworkRef
    layers: tuple[str, ...]
    pooling: Pooling
    batch_size: int
    precision: str
    torch_threads: int


def chunk_bounds(num_rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """Return the [start, stop) row range of each chunk."""
    return [(start, min(start + chunk_rows, num_rows)) for start in range(0, num_rows, chunk_rows)]


def pool_chunk(job: ChunkJob, start: int, stop: int, layers: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Return the pooled values (rows, columns) of rows [start, stop) for each layer.

    ``layers`` narrows ``job.layers`` to those still missing for this chunk.
    """
    if torch.get_num_threads() != job.torch_threads:
        torch.set_num_threads(job.torch_threads)

    store = PositionsStore(job.store_url)
    rows = store.read_rows(start, stop, names=("binary_input_packed", "global_input"))
    height, width = store.tensor_size
    binary = unpack_planes(rows["binary_input_packed"], height, width)
    global_input = np.ascontiguousarray(rows["global_input"], dtype=np.float32)

    precision = PRECISIONS[job.precision]
    # Chunks of one extract share a memory footprint per batch, so a batch
    # size that ran out of GPU memory stays lowered for later chunks here.
    limit_key = (job.network.sha256, job.network.device, job.layers, job.precision, height, width)
    return pool_positions(
        get_network(job.network),
        binary,
        global_input,
        layers if layers is not None else job.layers,
        job.pooling,
        batch_size_limit(limit_key, job.batch_size),
        autocast_dtype=None if precision == torch.float32 else precision,
        describe_row=lambda row: describe_position(store, start + row),
        on_batch_halved=lambda size: limit_batch_size(limit_key, size),
    )


def describe_position(store: PositionsStore, position: int) -> str:
    """Name a position by its store row, source file and row inside that file."""
    rows = store.read_rows(position, position + 1, names=("file_index", "source_row"))
    entry = store.files[int(rows["file_index"][0])]
    path = os.path.join(store.ingest_root, entry["path"])
    return f"position {position} ({path}, row {int(rows['source_row'][0])})"
