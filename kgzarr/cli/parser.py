"""Argument parser of the ``kgzarr`` command.

Every option's default is ``None`` here (booleans included), so that a value
from ``--config`` shows through when the flag is absent. The real defaults are
in :data:`kgzarr.config.DEFAULTS`, and the help text quotes them.
"""

from __future__ import annotations

import argparse

from kgzarr._version import __version__
from kgzarr.config import DEFAULTS

__all__ = ["build_parser"]

_DESCRIPTION = """\
Pooled KataGo layer activations for interpretability research.

Typical use:
  kgzarr ingest selfplay_out --store positions.zarr
  kgzarr layers --model kata1-b28c512nbt.bin.gz
  kgzarr extract --store positions.zarr --model kata1-b28c512nbt.bin.gz --layer rconv14.out
"""


def _default(section: str, key: str) -> str:
    value = DEFAULTS[section][key]
    return "chosen at run time" if value is None else str(value)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("general options")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file with settings for this command (see configs/default.yml); flags win over it",
    )
    group.add_argument("--quiet", action="store_true", default=None, help="print only warnings and errors, no progress bar")
    group.add_argument("--debug", action="store_true", default=None, help="log debug messages and show tracebacks of errors")
    return common


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``kgzarr`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="kgzarr",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kgzarr {__version__}")
    common = _common_options()
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_ingest(commands, common)
    _add_info(commands, common)
    _add_layers(commands, common)
    _add_pick_layer(commands, common)
    _add_extract(commands, common)
    _add_demo(commands, common)
    return parser


def _add_ingest(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "ingest",
        parents=[common],
        help="consolidate self-play .npz files (and SGF games) into a Zarr store",
        description=(
            "Find *.npz, *.sgf and *.sgfs files under each POSITIONS path (recursively, in sorted order), "
            "validate them and append their rows to the Zarr store. Files already in the store are skipped, "
            "so running ingest again on a growing folder adds only the new files."
        ),
    )
    sub.add_argument("inputs", nargs="+", metavar="POSITIONS", help="folder or file of self-play .npz / SGF data")
    sub.add_argument("--store", help="path or fsspec URL of the Zarr store to create or extend (required)")
    sub.add_argument(
        "--board-size",
        type=int,
        metavar="L",
        help="expected tensor side length L (points per row of the input planes); for SGF input, the tensor "
        "size to featurize into, boards up to LxL in its top-left corner (default: taken from the data or the "
        "store; SGF into a new store: 19)",
    )
    sub.add_argument(
        "--chunk-rows",
        type=int,
        metavar="N",
        help=f"positions per Zarr chunk for a new store (default: {_default('ingest', 'chunk_rows')}, "
        "sized to a few MB of packed planes)",
    )
    sub.add_argument("--workers", type=int, metavar="N", help="parallel file readers (default: CPU count)")
    sub.add_argument(
        "--scheduler",
        metavar="NAME",
        help=f"Dask scheduler for reading files: threads, processes or sync (default: {_default('ingest', 'scheduler')})",
    )
    sub.add_argument("--replace", action="store_true", default=None, help="accept files whose content changed since they were ingested; the store is rebuilt from the folder")
    sub.add_argument("--rebuild", action="store_true", default=None, help="delete the store's rows and ingest everything again")
    sub.add_argument(
        "--include-sgf",
        action="store_true",
        default=None,
        help="also ingest .sgf/.sgfs files found beside .npz files (a folder with only games ingests them anyway; "
        "KataGo self-play writes every game both ways, so this duplicates its positions)",
    )
    sub.add_argument("--skip-bad", action="store_true", default=None, help="skip invalid files or games, list them, and go on (exit status 2 only if nothing was added)")
    sub.add_argument(
        "--positions",
        metavar="WHICH",
        help="SGF input only: which positions of each game to keep: all, every:K, moves:A-B or last "
        f"(default: {_default('ingest', 'positions')})",
    )
    sub.add_argument("--rules", metavar="RULES", help="SGF input only: rules for games without an RU property, "
                     "a KataGo rules string or a name such as japanese, chinese, tromp-taylor (default: KataGo's default rules)")


def _add_info(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "info",
        parents=[common],
        help="summarise a positions store",
        description="Print rows, files, tensor size, board sizes seen, stored arrays, chunking and bytes on disk.",
    )
    sub.add_argument("store", metavar="STORE", help="path or fsspec URL of a kgzarr store")
    sub.add_argument("--json", action="store_true", default=None, help="print the summary as JSON")


def _add_layers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "layers",
        parents=[common],
        help="list the layer names of a KataGo network",
        description="Print every capturable layer of the network in forward order, with its aliases, "
        "its shape at the given board size and its kind.",
    )
    sub.add_argument("--model", "--model-path", dest="model", metavar="FILE", help="KataGo network file (.bin.gz, .bin, .txt.gz, .txt)")
    sub.add_argument("--board-size", type=int, metavar="L", help=f"board side used for the shapes (default: {_default('layers', 'board_size')})")
    sub.add_argument("--json", action="store_true", default=None, help="print the list as JSON")


def _add_pick_layer(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "pick-layer",
        parents=[common],
        help="write a layer_selection.yml for a network",
        description="Choose a layer (the residual output of the middle trunk block unless --choose is given) "
        "and record it in the layer-selection file format of the ai_go_explain pipeline.",
    )
    sub.add_argument("--model", "--model-path", dest="model", metavar="FILE", help="KataGo network file")
    sub.add_argument("--board-size", type=int, metavar="L", help=f"board side recorded in the file (default: {_default('pick_layer', 'board_size')})")
    sub.add_argument("--choose", metavar="NAME", help="layer name or alias to record (see 'kgzarr layers')")
    sub.add_argument("--out", metavar="FILE", help=f"file to write (default: {_default('pick_layer', 'out')})")


def _add_extract(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "extract",
        parents=[common],
        help="compute pooled activations of a layer for every position",
        description=(
            "Run the network over every position of the store, pool the chosen layers over on-board points, "
            "make the matrix non-negative and column-scaled, and write pooled_<layer>.npy, pooled_meta.json, "
            "pos_index_to_npz.txt and pos_index.csv. Raw pooled values are kept in the store, so a second "
            "extract with other --nonneg/--scale settings runs no forward pass.\n\n"
            "The command line of ai_go_explain's extract_pooled_activations.py also works: "
            "--positions-dir DIR --model-path FILE [--board-size 7] ingests DIR into OUT/positions.zarr "
            "(or reuses that store, adding only new files) and reads the layer from ./layer_selection.yml."
        ),
    )
    source = sub.add_argument_group("input")
    source.add_argument("--store", help="path or fsspec URL of a positions store made by 'kgzarr ingest'")
    source.add_argument("--positions-dir", metavar="DIR", help="self-play folder to ingest first (into OUT/positions.zarr unless --store is given)")
    source.add_argument("--model", "--model-path", dest="model", metavar="FILE", help="KataGo network file (.bin.gz, .bin, .txt.gz, .txt)")
    source.add_argument("--board-size", type=int, metavar="L", help="with --positions-dir: expected tensor side length "
                        "(default: taken from the data)")
    layer = sub.add_argument_group("layer")
    layer.add_argument("--layer", dest="layers", action="append", metavar="NAME",
                       help="layer to capture; repeat for several layers in one forward pass (see 'kgzarr layers')")
    layer.add_argument("--layer-selection", metavar="FILE",
                       help="layer_selection.yml to read chosen_layer from (default when no --layer: ./layer_selection.yml)")
    run = sub.add_argument_group("computation")
    run.add_argument("--batch-size", type=int, metavar="N", help=f"positions per forward pass (default: {_default('extract', 'batch_size')})")
    run.add_argument("--chunk-rows", type=int, metavar="N", help="positions per Dask task (default: the store's chunk rows)")
    run.add_argument("--device", metavar="DEV", help=f"torch device: auto, cpu, cuda or cuda:N (default: {_default('extract', 'device')})")
    run.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="arithmetic precision; bf16 and fp16 only on a GPU (default: fp32)")
    run.add_argument(
        "--compile",
        dest="compile_blocks",
        action="store_true",
        default=None,
        help="run the trunk blocks through torch.compile: about 1.3x faster on CPU for large runs, after "
        "6-30 s of compiling in each worker process (default: off)",
    )
    run.add_argument(
        "--scheduler",
        metavar="NAME",
        help="Dask scheduler: threads, processes, sync, local:N (a LocalCluster of N worker processes) or a "
        "scheduler address such as tcp://host:8786 (default: threads on CPU)",
    )
    out = sub.add_argument_group("output")
    out.add_argument("--pooling", metavar="MODE", help="mean, max, mean-max or grid:K, always over on-board points (default: mean)")
    out.add_argument("--nonneg", choices=("shift", "clip", "split", "none"),
                     help="make columns non-negative: shift subtracts each column's minimum from it when any value "
                     "is negative (the ai_go_explain rule), clip sets negatives to 0, "
                     "split keeps positive and negative parts as separate columns, none keeps signs (default: shift)")
    out.add_argument("--scale", choices=("max", "std", "none"),
                     help="divide each column by its maximum (values end in [0, 1]) or by its standard deviation "
                     "(values can exceed 1) (default: max)")
    out.add_argument("--strict", action="store_true", default=None, help="fail when a column is constant instead of keeping it as zeros")
    out.add_argument("--out", "--output-dir", dest="out", metavar="DIR", help=f"output folder (default: {_default('extract', 'out')})")
    out.add_argument("--overwrite", action="store_true", default=None, help="replace existing results in the output folder")
    source.add_argument(
        "--allow-changed-sources",
        action="store_true",
        default=None,
        help="extract even when source files changed since ingest (pos_index then names rows those files no longer hold)",
    )


def _add_demo(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "demo",
        parents=[common],
        help="run ingest and extract on a generated example",
        description="Generate a few hundred 7x7 positions in KataGo's self-play .npz layout and a small "
        "random KataGo-format network, then run ingest and extract on them. Needs no download.",
    )
    sub.add_argument("--out", metavar="DIR", help=f"folder for the example and its outputs (default: {_default('demo', 'out')})")
    sub.add_argument("--positions", type=int, metavar="N", help=f"positions to generate (default: {_default('demo', 'positions')})")
    sub.add_argument("--seed", type=int, metavar="N", help=f"random seed (default: {_default('demo', 'seed')})")
