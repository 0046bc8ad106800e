"""The lazy extraction graph: store chunks -> chunk tasks -> a (position, channel) DataArray.

One task per chunk of store rows reads and unpacks the planes, runs the
network up to the deepest requested layer in batches and pools every
requested layer. Nothing runs until the result is computed.

Performance notes (Dask): the task graph carries only a
:class:`~kgzarr.extraction.worker.NetworkRef`, never the network, so a graph of
thousands of chunks stays small and each worker process loads the network
once. Chunks of a few thousand rows keep Dask's per-task overhead (about a
millisecond) small next to a forward pass. A chunk's unpacked float32 planes
and the activations of one batch must fit in a worker's memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from kgzarr.data.store import PositionsStore, open_positions
from kgzarr.errors import ConfigError
from kgzarr.extraction.chunks import ChunkJob, chunk_bounds, pool_chunk
from kgzarr.extraction.columns import channel_coords
from kgzarr.extraction.device import resolve_device, resolve_precision
from kgzarr.extraction.pooling import Pooling, check_grid_fits, parse_pooling
from kgzarr.extraction.worker import network_ref

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = ["LayerPlan", "pooled_activations", "pooled_graph", "load_network", "plan_layers"]


@dataclass(frozen=True)
class LayerPlan:
    """A requested layer: the name as given, its canonical name and its channel count."""

    requested: str
    canonical: str
    channels: int


def load_network(model: str | os.PathLike[str] | KataGoNet, device: str) -> KataGoNet:
    """Return ``model`` if it is a loaded network, else load it from its file onto ``device``."""
    from kgzarr.model.network import KataGoNet, load_model

    if isinstance(model, KataGoNet):
        return model
    return load_model(model, device=device)


def plan_layers(net: KataGoNet, layers: Sequence[str], tensor_side: int) -> list[LayerPlan]:
    """Resolve layer names, reject duplicates and layers that are not (C, H, W) tensors."""
    infos = {info.name: info for info in net.layer_info(board_size=tensor_side)}
    plans: list[LayerPlan] = []
    for name in layers:
        canonical = net.resolve_layer(name)
        info = infos[canonical]
        if len(info.shape) != 3:
            raise ConfigError(
                f"layer {name} of {net.name} has shape {info.shape}, not (channels, height, width); "
                "pooling needs a spatial layer such as a trunk block output"
            )
        if any(plan.canonical == canonical for plan in plans):
            raise ConfigError(f"layer {name} is requested twice (it is {canonical}); list each layer once")
        plans.append(LayerPlan(name, canonical, info.channels))
    return plans


def pooled_graph(
    store: PositionsStore,
    net: KataGoNet,
    plans: Sequence[LayerPlan],
    pooling: Pooling,
    *,
    batch_size: int,
    device: str,
    precision: str,
    chunk_rows: int,
    torch_threads: int,
) -> dict[str, da.Array]:
    """Return one lazy float32 (position, column) Dask array per canonical layer, sharing chunk tasks."""
    job = ChunkJob(
        store.url,
        network_ref(net, device),
        tuple(plan.canonical for plan in plans),
        pooling,
        batch_size,
        precision,
        torch_threads,
    )
    token = tokenize(store.content_fingerprint, job, chunk_rows)

    pieces: dict[str, list[da.Array]] = {plan.canonical: [] for plan in plans}
    for index, (start, stop) in enumerate(chunk_bounds(store.num_rows, chunk_rows)):
        task = dask.delayed(pool_chunk, pure=True, traverse=False)(job, start, stop, dask_key_name=f"kgzarr-pool-{token}-{index}")
        for plan in plans:
            shape = (stop - start, pooling.columns(plan.channels))
            pieces[plan.canonical].append(da.from_delayed(task[plan.canonical], shape=shape, dtype=np.float32))

    columns = {plan.canonical: pooling.columns(plan.channels) for plan in plans}
    return {
        name: da.concatenate(parts, axis=0) if parts else da.zeros((0, columns[name]), dtype=np.float32)
        for name, parts in pieces.items()
    }


def pooled_activations(
    store: str | os.PathLike[str],
    model: str | os.PathLike[str] | KataGoNet,
    layer: str,
    pooling: str = "mean",
    batch_size: int = 512,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    chunk_rows: int | None = None,
    torch_threads: int | None = None,
) -> xr.DataArray:
    """Return the pooled activations of ``layer`` over every store row, lazily.

    The result is a float32 (position, channel) DataArray backed by Dask,
    with coords ``position``, ``channel``, ``source_file``, ``source_row``,
    ``board_x``, ``board_y`` (plus ``layer_channel``, ``pooled_by`` and
    ``sign`` along ``channel``) and the layer and model in ``attrs``.
    Nothing runs until ``.compute()``, ``.values`` or ``.to_zarr()``.
    ``model`` is a model file or a loaded ``KataGoNet``. ``torch_threads``
    is the torch thread count of each task. By default it is the CPU cores
    divided by the number of chunks that can run at once.
    """
    positions = PositionsStore(store)
    device = resolve_device(device)
    resolve_precision(precision, device)
    pooling_mode = parse_pooling(pooling)
    net = load_network(model, device)
    plan = plan_layers(net, [layer], positions.tensor_size[0])[0]
    check_pooling_fits(positions, pooling_mode)

    rows_per_chunk = check_chunk_rows(chunk_rows or positions.chunk_rows)
    graph = pooled_graph(
        positions,
        net,
        [plan],
        pooling_mode,
        batch_size=check_batch_size(batch_size),
        device=device,
        precision=precision,
        chunk_rows=rows_per_chunk,
        torch_threads=torch_threads or default_torch_threads(positions.num_rows, rows_per_chunk),
    )
    return labeled_array(graph[plan.canonical], positions, net, plan, pooling_mode)


def labeled_array(
    values: da.Array, store: PositionsStore, net: KataGoNet, plan: LayerPlan, pooling: Pooling
) -> xr.DataArray:
    """Wrap a (position, column) array of raw pooled values with its coords and attrs."""
    dataset = open_positions(store.url)
    coords: dict[str, Any] = {
        "position": ("position", np.arange(store.num_rows, dtype=np.int64)),
        **{name: dataset.coords[name].variable for name in ("source_file", "source_row", "board_x", "board_y")},
        **channel_coords(pooling, plan.channels),
    }
    attrs = {
        "layer": plan.requested,
        "canonical_layer": plan.canonical,
        "model_name": net.name,
        "model_version": net.version,
        "model_sha256": net.sha256,
        "model_path": "" if net.path is None else str(net.path),
        "pooling": pooling.name,
        "store": store.url,
        "content_fingerprint": store.content_fingerprint,
    }
    return xr.DataArray(values, dims=("position", "channel"), coords=coords, name=plan.requested, attrs=attrs)


def check_pooling_fits(store: PositionsStore, pooling: Pooling) -> None:
    """Raise ConfigError before any forward pass when a board is too small for the grid."""
    if pooling.kind != "grid":
        return
    rows = store.read_rows(0, store.num_rows, names=("board_x", "board_y"))
    check_grid_fits(pooling, rows["board_x"], rows["board_y"])


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"invalid batch size {batch_size!r}; use a positive number of positions per forward pass")
    return batch_size


def check_chunk_rows(chunk_rows: int) -> int:
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"invalid chunk rows {chunk_rows!r}; use a positive number of rows per task")
    return chunk_rows


def default_torch_threads(num_rows: int, chunk_rows: int) -> int:
    cores = os.cpu_count() or 1
    chunks = max(1, -(-num_rows // chunk_rows))
    return max(1, cores // min(cores, chunks))
