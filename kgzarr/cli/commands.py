"""Handlers of the ``kgzarr`` subcommands: turn settings into library calls and print results."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from kgzarr.cli.progress import Progress
from kgzarr.errors import ConfigError

__all__ = ["HANDLERS"]

logger = logging.getLogger("kgzarr.cli")


def _require(settings: Mapping[str, Any], key: str, flag: str) -> Any:
    value = settings.get(key)
    if value in (None, "", []):
        raise ConfigError(f"missing {flag}; give it on the command line or in the --config file")
    return value


def run_ingest(settings: dict[str, Any], quiet: bool) -> int:
    store = _require(settings, "store", "--store")
    from kgzarr.data.ingest import ingest

    with Progress("ingest", unit="files", quiet=quiet) as progress:
        report = ingest(
            settings["inputs"],
            store,
            board_size=settings["board_size"],
            chunk_rows=settings["chunk_rows"],
            workers=settings["workers"],
            scheduler=settings["scheduler"],
            replace=settings["replace"],
            rebuild=settings["rebuild"],
            skip_bad=settings["skip_bad"],
            include_sgf=settings["include_sgf"],
            sgf_positions=settings["positions"],
            sgf_rules=settings["rules"],
            progress=progress,
        )
    print(report.summary())
    for path, reason in report.files_rejected:
        print(f"  rejected {path}: {reason}")
    if report.files_rejected and report.rows_added == 0 and report.files_added == 0:
        return 2
    return 0


def run_info(settings: dict[str, Any], quiet: bool) -> int:
    from kgzarr.data.store import store_info

    info = store_info(settings["store"])
    if settings["json"]:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(_format_info(info))
    return 0


def _format_info(info: Mapping[str, Any]) -> str:
    lines = []
    for key, value in info.items():
        if isinstance(value, Mapping):
            lines.append(f"{key}:")
            lines.extend(f"  {sub_key}: {_format_value(sub_value)}" for sub_key, sub_value in value.items())
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            lines.append(f"{key}:")
            lines.extend(f"  {_format_value(item)}" for item in value)
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_format_value(item)}" for key, item in value.items() if item not in ("", None))
    if isinstance(value, (list, tuple)):
        return "×".join(str(item) for item in value)
    return str(value)


def run_layers(settings: dict[str, Any], quiet: bool) -> int:
    from kgzarr.model.network import load_model

    net = load_model(_require(settings, "model", "--model"))
    infos = net.layer_info(board_size=settings["board_size"])
    if settings["json"]:
        print(json.dumps([_layer_info_dict(info) for info in infos], indent=2))
        return 0
    print(f"# {net.name}: model version {net.version}, {net.num_blocks} blocks, {net.trunk_channels} trunk channels")
    print(f"{'name':<40} {'shape':<14} {'kind':<10} aliases")
    for info in infos:
        shape = "×".join(str(size) for size in info.shape)
        print(f"{info.name:<40} {shape:<14} {info.kind:<10} {', '.join(info.aliases)}")
    return 0


def _layer_info_dict(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "aliases": list(info.aliases),
        "channels": info.channels,
        "kind": info.kind,
        "block": info.block,
        "shape": list(info.shape),
    }


def run_pick_layer(settings: dict[str, Any], quiet: bool) -> int:
    from kgzarr.model.pick import write_layer_selection

    path, chosen = write_layer_selection(
        _require(settings, "model", "--model"),
        board_size=settings["board_size"],
        choose=settings["choose"],
        out=settings["out"],
    )
    print(f"recorded layer {chosen} in {path}")
    return 0


def run_extract(settings: dict[str, Any], quiet: bool) -> int:
    from kgzarr.extraction.cluster import dashboard_link, open_client
    from kgzarr.extraction.device import resolve_device
    from kgzarr.extraction.run import extract

    if not settings["store"] and not settings["positions_dir"]:
        raise ConfigError("missing --store (or --positions-dir, to ingest a self-play folder first)")
    _require(settings, "model", "--model")
    # A local:N cluster or a scheduler address is opened here rather than in
    # extract(), so that the dashboard address is printed before the run starts.
    with open_client(settings["scheduler"], resolve_device(settings["device"])) as client:
        if client is not None:
            print(f"Dask dashboard: {dashboard_link(client)}")
        with Progress("extract", unit="rows", quiet=quiet) as progress:
            report = extract(
                store=settings["store"],
                model=settings["model"],
                layers=settings["layers"] or None,
                layer_selection=settings["layer_selection"],
                positions_dir=settings["positions_dir"],
                board_size=settings["board_size"],
                out=settings["out"],
                batch_size=settings["batch_size"],
                chunk_rows=settings["chunk_rows"],
                device=settings["device"],
                precision=settings["precision"],
                pooling=settings["pooling"],
                nonneg=settings["nonneg"],
                scale=settings["scale"],
                strict=settings["strict"],
                scheduler=client if client is not None else settings["scheduler"],
                overwrite=settings["overwrite"],
                allow_changed_sources=settings["allow_changed_sources"],
                compile_blocks=settings["compile_blocks"],
                progress=progress,
            )
    print(report.summary())
    return 0


def run_demo(settings: dict[str, Any], quiet: bool) -> int:
    from kgzarr.demo import run_demo as demo

    with Progress("demo extract", unit="rows", quiet=quiet) as progress:
        report = demo(settings["out"], positions=settings["positions"], seed=settings["seed"], progress=progress)
    print(report.summary())
    return 0


# Subcommand -> (config section, handler).
HANDLERS = {
    "ingest": ("ingest", run_ingest),
    "info": ("info", run_info),
    "layers": ("layers", run_layers),
    "pick-layer": ("pick_layer", run_pick_layer),
    "extract": ("extract", run_extract),
    "demo": ("demo", run_demo),
}
