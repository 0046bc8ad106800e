"""Read an extract output folder back as a labeled (position, channel) DataArray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from kgzarr.errors import ConfigError, OutputWriteError
from kgzarr.extraction.columns import channel_coords
from kgzarr.extraction.outputs import CSV_NAME, META_NAME, output_tag
from kgzarr.extraction.pooling import parse_pooling

__all__ = ["open_output_folder"]

# Rows per Dask chunk when reading a .npy back through a memory map.
_READ_CHUNK_ROWS = 65536


def open_output_folder(folder: Path, layer: str | None = None) -> xr.DataArray:
    """Open ``pooled_<layer>.npy`` of ``folder`` with coords from ``pos_index.csv`` and ``pooled_meta.json``."""
    meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    entry = _layer_entry(folder, meta, layer)

    matrix = np.load(folder / entry["file"], mmap_mode="r")
    values = da.from_array(matrix, chunks=(_READ_CHUNK_ROWS, -1), asarray=False)

    coords: dict[str, Any] = _position_coords(folder / CSV_NAME, matrix.shape[0])
    pooling = parse_pooling(meta["pooling"])
    coords.update(channel_coords(pooling, entry["channels"], split=meta["nonneg"] == "split"))

    attrs = {
        "layer": entry["requested_layer"],
        "canonical_layer": entry["canonical_layer"],
        "model_sha256": meta["model"]["sha256"],
        "model_name": meta["model"]["name"],
        "pooling": meta["pooling"],
        "nonneg": meta["nonneg"],
        "scale": meta["scale"],
    }
    return xr.DataArray(values, dims=("position", "channel"), coords=coords, name=output_tag(entry["requested_layer"]), attrs=attrs)


def _layer_entry(folder: Path, meta: dict[str, Any], layer: str | None) -> dict[str, Any]:
    layers: dict[str, dict[str, Any]] = meta["layers"]
    if layer is None:
        if len(layers) != 1:
            raise ConfigError(f"{folder} contains several layers ({', '.join(layers)}); pass layer= to pick one")
        return next(iter(layers.values()))

    for tag, entry in layers.items():
        if layer in (tag, entry["requested_layer"], entry["canonical_layer"]):
            return entry
    raise ConfigError(f"{folder} has no results for layer {layer!r}; it contains {', '.join(layers)}")


def _position_coords(csv_path: Path, rows: int) -> dict[str, Any]:
    table = pd.read_csv(csv_path, dtype={"npz_path": str})
    if len(table) != rows:
        raise OutputWriteError(
            f"{csv_path} lists {len(table)} rows but the matrix has {rows}; the output folder is incomplete, "
            "run the extract again with --overwrite"
        )
    return {
        "position": ("position", np.arange(rows, dtype=np.int64)),
        "source_file": ("position", table["npz_path"].to_numpy(dtype=object)),
        "source_row": ("position", table["row_in_file"].to_numpy(dtype=np.int64)),
        "board_x": ("position", table["board_x"].to_numpy(dtype=np.int16)),
        "board_y": ("position", table["board_y"].to_numpy(dtype=np.int16)),
    }
