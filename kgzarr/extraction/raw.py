"""Raw pooled values kept in the positions store, so one forward pass serves many extracts.

Layout inside the store::

    activations/<model SHA-256, first 16 hex digits>/<canonical layer>/<pooling>[.<precision>]/
        values      float32 (position, column), chunked like the tasks that write it
        chunk_done  uint8 (chunk,), one Zarr chunk per element; 1 once that chunk's values are written

``grid:K`` is spelled ``grid-K`` in the path, and reduced precisions add a
suffix (``mean.bf16``) because their values differ from fp32 ones. The group
attrs record the store's content fingerprint and file count. When files
are appended to the store, the values of the earlier rows stay valid: the
arrays grow and only the new rows (and a partial last chunk) are computed.
When files are replaced, every value is computed again.

A task writes its chunk of ``values`` first and its ``chunk_done`` flag
second, so an interrupted extract resumes with the chunks whose flag is
missing. Each task writes only its own Zarr chunks, so tasks in different
processes never write the same object.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from kgzarr._version import __version__
from kgzarr.data.store import PositionsStore
from kgzarr.errors import StoreFormatError
from kgzarr.extraction.chunks import ChunkJob, chunk_bounds, pool_chunk
from kgzarr.extraction.pooling import Pooling, parse_pooling

__all__ = ["RAW_ROOT", "RawArray", "raw_path", "prepare_raw", "write_raw_chunk", "open_raw_activations"]

logger = logging.getLogger(__name__)

RAW_ROOT = "activations"


def raw_path(sha256: str, canonical_layer: str, pooling: Pooling, precision: str) -> str:
    """Return the group path of one model, layer, pooling and precision inside the store."""
    leaf = pooling.name.replace(":", "-") + ("" if precision == "fp32" else f".{precision}")
    return f"{RAW_ROOT}/{sha256[:16]}/{canonical_layer}/{leaf}"


@dataclass(frozen=True)
class RawArray:
    """One raw group: where it is, its chunking, and which chunks still need a forward pass."""

    store_url: str
    path: str
    canonical_layer: str
    chunk_rows: int
    num_rows: int
    columns: int
    missing: tuple[int, ...]

    @property
    def bounds(self) -> list[tuple[int, int]]:
        return chunk_bounds(self.num_rows, self.chunk_rows)

    def values(self) -> da.Array:
        """Return the stored values as a Dask array, one Dask chunk per Zarr chunk."""
        array = zarr.open_array(self.store_url, path=f"{self.path}/values", mode="r")
        return da.from_zarr(array)


def prepare_raw(
    store: PositionsStore,
    *,
    sha256: str,
    canonical_layer: str,
    channels: int,
    pooling: Pooling,
    precision: str,
    chunk_rows: int,
    model_name: str,
) -> RawArray:
    """Open the raw group for these settings, creating it when absent or stale; list missing chunks."""
    path = raw_path(sha256, canonical_layer, pooling, precision)
    columns = pooling.columns(channels)
    attrs = {
        "model_sha256": sha256,
        "model_name": model_name,
        "canonical_layer": canonical_layer,
        "layer_channels": channels,
        "pooling": pooling.name,
        "precision": precision,
        "content_fingerprint": store.content_fingerprint,
        "rows": store.num_rows,
        "files": len(store.files),
        "columns": columns,
    }

    group = _open_matching(store, path, attrs)
    if group is None:
        group = _create(store.url, path, attrs, chunk_rows, columns)

    rows_per_chunk = int(group.attrs["chunk_rows"])
    done = group["chunk_done"][:]
    missing = tuple(int(index) for index in np.flatnonzero(done == 0))
    return RawArray(store.url, path, canonical_layer, rows_per_chunk, store.num_rows, columns, missing)


# Attrs that change when files are appended to the store; see _grow.
_GROWTH_KEYS = {"content_fingerprint", "rows", "files"}


def _open_matching(store: PositionsStore, path: str, attrs: dict[str, Any]) -> zarr.Group | None:
    try:
        group = zarr.open_group(store.url, path=path, mode="r+")
    except FileNotFoundError:
        return None

    stored = dict(group.attrs)
    stale = [key for key, value in attrs.items() if key != "model_name" and stored.get(key) != value]
    if "chunk_done" not in group or "values" not in group:
        stale.append("arrays")
    if not stale:
        return group
    if set(stale) <= _GROWTH_KEYS and _grew_from(store, stored) and _chunks_align(group):
        _grow(group, attrs)
        return group
    logger.info("raw pooled values at %s/%s are stale (%s differ); computing them again", store.url, path, ", ".join(stale))
    return None


def _grew_from(store: PositionsStore, stored: dict[str, Any]) -> bool:
    old_files = stored.get("files")
    if not isinstance(old_files, int) or not 0 < old_files <= len(store.files):
        return False
    return store.prefix_fingerprint(old_files) == stored.get("content_fingerprint")


def _chunks_align(group: zarr.Group) -> bool:
    # A store smaller than one task chunk got a shorter Zarr chunk. After
    # growth, two tasks could then write one Zarr chunk, so such a group is
    # computed again instead.
    return int(group["values"].chunks[0]) == int(group.attrs["chunk_rows"])


def _grow(group: zarr.Group, attrs: dict[str, Any]) -> None:
    """Extend the raw arrays to the store's new row count, keeping the chunks already computed."""
    old_rows = int(group.attrs["rows"])
    new_rows = int(attrs["rows"])
    chunk_rows = int(group.attrs["chunk_rows"])
    values = group["values"]
    done = group["chunk_done"]

    values.resize((new_rows, values.shape[1]))
    done.resize((len(chunk_bounds(new_rows, chunk_rows)),))
    if old_rows % chunk_rows:
        # The old last chunk was short; it now has rows to add.
        done[old_rows // chunk_rows] = 0
    group.attrs.update({key: attrs[key] for key in _GROWTH_KEYS})
    logger.info("store grew from %d to %d rows; keeping the raw pooled values of the first %d", old_rows, new_rows, old_rows)


def _create(url: str, path: str, attrs: dict[str, Any], chunk_rows: int, columns: int) -> zarr.Group:
    num_rows = attrs["rows"]
    num_chunks = len(chunk_bounds(num_rows, chunk_rows))
    group_attrs = {
        **attrs,
        "chunk_rows": chunk_rows,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kgzarr_version": __version__,
    }
    group = zarr.open_group(url, path=path, mode="w", attributes=group_attrs)
    group.create_array(
        "values", shape=(num_rows, columns), dtype="float32", chunks=(max(1, min(chunk_rows, num_rows)), columns), fill_value=0
    )
    group.create_array("chunk_done", shape=(num_chunks,), dtype="uint8", chunks=(1,), fill_value=0)
    return group


def write_raw_chunk(job: ChunkJob, targets: Sequence[RawArray], index: int) -> int:
    """Compute chunk ``index`` for the layers of ``targets`` and store it; return the rows written.

    This is the task function of an extract: it returns a count, never the
    values, so nothing large travels back to the scheduler.
    """
    start, stop = targets[0].bounds[index]
    pooled = pool_chunk(job, start, stop, layers=tuple(target.canonical_layer for target in targets))

    for target in targets:
        values = zarr.open_array(target.store_url, path=f"{target.path}/values", mode="r+")
        values[start:stop] = pooled[target.canonical_layer]
    for target in targets:
        flags = zarr.open_array(target.store_url, path=f"{target.path}/chunk_done", mode="r+")
        flags[index] = 1
    return stop - start


def open_raw_activations(store: str | os.PathLike[str], layer: str | None = None) -> xr.DataArray:
    """Open raw pooled values kept in a store as a (position, channel) DataArray with coords.

    ``layer`` (a canonical name) is needed when the store keeps values of
    several layers, models or poolings.
    """
    from kgzarr.extraction.columns import channel_coords
    from kgzarr.data.store import open_positions

    positions = PositionsStore(store)
    groups = _complete_groups(positions, layer)
    if len(groups) != 1:
        found = ", ".join(path for path, _ in groups) or "none"
        raise StoreFormatError(
            f"{positions.url}: expected one complete set of pooled values"
            f"{'' if layer is None else f' for layer {layer}'}, found {found}; pass layer= or run kgzarr extract"
        )

    path, attrs = groups[0]
    values = da.from_zarr(zarr.open_array(positions.url, path=f"{path}/values", mode="r"))
    dataset = open_positions(positions.url)
    coords: dict[str, Any] = {
        "position": ("position", np.arange(positions.num_rows, dtype=np.int64)),
        **{name: dataset.coords[name].variable for name in ("source_file", "source_row", "board_x", "board_y")},
        **channel_coords(parse_pooling(attrs["pooling"]), int(attrs["layer_channels"])),
    }
    keep = ("model_sha256", "model_name", "canonical_layer", "pooling", "precision", "content_fingerprint")
    return xr.DataArray(
        values, dims=("position", "channel"), coords=coords, name=attrs["canonical_layer"], attrs={k: attrs[k] for k in keep}
    )


def _complete_groups(positions: PositionsStore, layer: str | None) -> list[tuple[str, dict[str, Any]]]:
    try:
        root = zarr.open_group(positions.url, path=RAW_ROOT, mode="r")
    except FileNotFoundError:
        return []

    found = []
    for model_key, model_group in root.groups():
        for layer_key, layer_group in model_group.groups():
            for leaf_key, leaf in layer_group.groups():
                attrs = dict(leaf.attrs)
                current = attrs.get("content_fingerprint") == positions.content_fingerprint
                complete = "chunk_done" in leaf and bool(np.all(leaf["chunk_done"][:] == 1))
                if current and complete and layer in (None, attrs.get("canonical_layer")):
                    found.append((f"{RAW_ROOT}/{model_key}/{layer_key}/{leaf_key}", attrs))
    return found
