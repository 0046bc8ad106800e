"""The contents of ``pooled_meta.json``.

Keys that the ai_go_explain step-3 script wrote keep their names and
meaning: ``date``, ``source_model``, ``layer``, ``channels``,
``original_channels``, ``pooled_channels``, ``pooling_method``, ``batch_size``,
``non_negative_shift`` and ``column_scaled``. The exception is ``positions``.
That script stored the number of ``.npz`` files there, but kgzarr stores the
number of rows and puts the file count in ``files``. These keys describe the first requested
layer; ``layers`` describes every layer, keyed by its file tag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kgzarr._version import __version__
from kgzarr.data.store import PositionsStore
from kgzarr.extraction.outputs import npy_name, output_tag
from kgzarr.extraction.pipeline import LayerPlan
from kgzarr.extraction.pooling import Pooling
from kgzarr.extraction.stats import ColumnStats
from kgzarr.extraction.transforms import ColumnTransform

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = ["LayerResult", "RunSettings", "build_meta", "pooling_method"]


@dataclass(frozen=True)
class LayerResult:
    """Result of one layer: its plan, raw statistics, transform and raw group path."""

    plan: LayerPlan
    raw_stats: ColumnStats
    transform: ColumnTransform
    raw_path: str


@dataclass(frozen=True)
class RunSettings:
    """The options of one extract, as recorded in the meta."""

    pooling: Pooling
    batch_size: int
    device: str
    precision: str
    scheduler: str
    seconds: float
    forward_rows: int
    reused_rows: int


def pooling_method(pooling: Pooling) -> str:
    """Return the ``pooling_method`` value the ai_go_explain NMF scripts check (``3x3_grid``)."""
    if pooling.kind == "grid":
        return f"{pooling.grid_size}x{pooling.grid_size}_grid"
    return {"mean": "global_average", "max": "global_max", "mean-max": "global_average_max"}[pooling.kind]


def build_meta(
    net: KataGoNet, store: PositionsStore, results: Sequence[LayerResult], settings: RunSettings
) -> dict[str, Any]:
    """Return the JSON document for ``pooled_meta.json``."""
    first = results[0]
    rows = store.num_rows
    meta: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "source_model": "" if net.path is None else str(net.path),
        "layer": first.plan.requested,
        "positions": rows,
        "files": len(store.files),
        "channels": first.plan.channels,
        "original_channels": first.plan.channels,
        "pooled_channels": first.transform.out_columns,
        "pooling_method": pooling_method(settings.pooling),
        "batch_size": settings.batch_size,
        "non_negative_shift": first.transform.nonneg == "shift",
        "column_scaled": first.transform.scale != "none",
        "kgzarr_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "path": "" if net.path is None else str(net.path),
            "name": net.name,
            "version": net.version,
            "sha256": net.sha256,
        },
        "pooling": settings.pooling.name,
        "nonneg": first.transform.nonneg,
        "scale": first.transform.scale,
        "device": settings.device,
        "precision": settings.precision,
        "scheduler": settings.scheduler,
        "store": {"location": store.url, "content_fingerprint": store.content_fingerprint},
        "tensor_size": list(store.tensor_size),
        "board_sizes": _board_sizes(store),
        "elapsed_seconds": round(settings.seconds, 3),
        "rows_per_second": round(rows / settings.seconds, 1) if settings.seconds > 0 else None,
        "forward_rows": settings.forward_rows,
        "reused_rows": settings.reused_rows,
        "layers": {output_tag(result.plan.requested): _layer_entry(result) for result in results},
    }
    return meta


def _layer_entry(result: LayerResult) -> dict[str, Any]:
    return {
        "file": npy_name(result.plan.requested),
        "requested_layer": result.plan.requested,
        "canonical_layer": result.plan.canonical,
        "channels": result.plan.channels,
        "pooled_channels": result.transform.out_columns,
        **result.transform.to_meta(),
        "raw_stats": result.raw_stats.to_dict(),
        "raw_values": result.raw_path,
    }


def _board_sizes(store: PositionsStore) -> dict[str, int]:
    rows = store.read_rows(0, store.num_rows, names=("board_x", "board_y"))
    pairs, counts = np.unique(np.stack([rows["board_x"], rows["board_y"]], axis=1), axis=0, return_counts=True)
    return {f"{int(x)}x{int(y)}": int(count) for (x, y), count in zip(pairs, counts)}
