"""Read ``layer_selection.yml``, the layer choice written by the pick-layer step.

Two styles of ``chosen_layer`` exist in the wild, and both are kept as
written so the network resolves them: KataGo's ExtraOutputs names
(``rconv14.out``) and the older ``trunk_block_13_output``. ``layer_shape``
reads like ``512×7×7``, sometimes followed by a note (``512×13×13 (approx)``);
an ``x`` works in place of ``×``. Every other key is optional and kept in
:attr:`LayerSelection.extra`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgzarr.config import describe_yaml_error
from kgzarr.errors import LayerSelectionError

__all__ = ["LayerSelection", "read_layer_selection", "parse_layer_shape"]


_SHAPE_PATTERN = re.compile(r"\s*(\d+)\s*[×xX]\s*(\d+)\s*[×xX]\s*(\d+)\b.*", re.DOTALL)


@dataclass(frozen=True)
class LayerSelection:
    """Contents of a layer-selection file; ``layer_shape`` is (channels, height, width) or None."""

    path: Path
    chosen_layer: str
    layer_shape: tuple[int, int, int] | None
    board_size: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int | None:
        return None if self.layer_shape is None else self.layer_shape[0]


def read_layer_selection(path: str | Path) -> LayerSelection:
    """Read and check a layer-selection YAML file."""
    path = Path(path)
    document = _load_yaml(path)

    layer = document.get("chosen_layer")
    if not isinstance(layer, str) or not layer.strip():
        raise LayerSelectionError(
            f"{path}: key 'chosen_layer' is missing or not a layer name (found {layer!r}); "
            "add a line such as 'chosen_layer: rconv14.out'"
        )

    shape = None
    if "layer_shape" in document:
        shape = parse_layer_shape(document["layer_shape"], path)

    board_size = document.get("board_size")
    if board_size is not None and not isinstance(board_size, int):
        raise LayerSelectionError(f"{path}: key 'board_size' must be an integer, found {board_size!r}")

    extra = {key: value for key, value in document.items() if key not in ("chosen_layer", "layer_shape", "board_size")}
    return LayerSelection(path, layer.strip(), shape, board_size, extra)


def parse_layer_shape(value: Any, path: str | Path = "layer_selection.yml") -> tuple[int, int, int]:
    """Parse ``512×7×7`` (or ``512x7x7``, with an optional trailing note) into (512, 7, 7)."""
    match = _SHAPE_PATTERN.fullmatch(str(value))
    if match is None:
        raise LayerSelectionError(
            f"{path}: key 'layer_shape' must read like '512×7×7' (channels×height×width), found {value!r}"
        )
    channels, height, width = (int(group) for group in match.groups())
    return channels, height, width


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LayerSelectionError(
            f"layer-selection file {path} not found; pass --layer NAME or --layer-selection FILE"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LayerSelectionError(f"cannot read layer-selection file {path}: {exc}") from exc

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LayerSelectionError(
            f"{path} is not valid YAML ({describe_yaml_error(exc)}); fix the file or pass --layer NAME"
        ) from exc

    if not isinstance(document, dict):
        raise LayerSelectionError(
            f"{path} must be a YAML mapping with key 'chosen_layer', found {type(document).__name__}"
        )
    return document
