"""Write a layer-selection file (``layer_selection.yml``) for a network.

The file format is the one the extraction step of the ai_go_explain pipeline
reads: ``chosen_layer``, ``layer_shape`` (``C×L×L``), ``board_size``,
``network_file``, ``trunk_blocks``, ``pooling`` and ``date``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import yaml

from kgzarr.model.network import KataGoNet, load_model

__all__ = ["default_layer", "write_layer_selection"]

logger = logging.getLogger(__name__)


def default_layer(net: KataGoNet) -> str:
    """Return the residual output of the middle trunk block.

    The middle block is block number ``num_blocks // 2`` counted from 1, so a
    28-block net gives ``rconv14.out``, the layer the ai_go_explain pipeline
    studied on its b28c512nbt net.
    """
    middle_index = max(net.num_blocks // 2 - 1, 0)
    for info in net.layer_info():
        if info.kind == "residual" and info.block == middle_index:
            return info.name
    return net.layer_names()[-1]


def write_layer_selection(
    model: str | os.PathLike[str] | KataGoNet,
    *,
    board_size: int = 7,
    choose: str | None = None,
    out: str | os.PathLike[str] = "layer_selection.yml",
) -> tuple[Path, str]:
    """Record a layer of ``model`` in ``out``; return the path and the layer name written.

    ``choose`` may be any canonical name or alias. It is written as given, so
    the output files of a later extract carry the name the user chose.
    """
    net = model if isinstance(model, KataGoNet) else load_model(model)
    chosen = choose if choose is not None else default_layer(net)
    canonical = net.resolve_layer(chosen)
    info = next(item for item in net.layer_info(board_size=board_size) if item.name == canonical)

    selection = {
        "chosen_layer": chosen,
        "canonical_layer": canonical,
        "layer_shape": "×".join(str(size) for size in info.shape),
        "board_size": board_size,
        "network_file": str(net.path) if net.path is not None else net.name,
        "network_name": net.name,
        "network_sha256": net.sha256,
        "trunk_blocks": net.num_blocks,
        "pooling": "spatial mean",
        "date": dt.date.today().isoformat(),
    }

    out_path = Path(out)
    if out_path.exists():
        logger.info("replacing the layer selection in %s", out_path)
    tmp_path = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    with tmp_path.open("w", encoding="utf-8") as handle:
        yaml.safe_dump(selection, handle, allow_unicode=True, sort_keys=False)
    os.replace(tmp_path, out_path)
    return out_path, chosen
