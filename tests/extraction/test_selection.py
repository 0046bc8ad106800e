"""Reading layer_selection.yml in both styles found in the wild."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgzarr.errors import LayerSelectionError
from kgzarr.extraction.selection import parse_layer_shape, read_layer_selection

STEP2_FILE = """\
board_size: 13
chosen_layer: rconv14.out
date: '2025-07-21'
layer_shape: 512×13×13 (approx)
network_file: ../models/kata1-b28c512nbt-s9584861952-d4960414494/model.ckpt
pooling: spatial mean
trunk_blocks: 28
"""


def test_reads_step2_file(tmp_path: Path) -> None:
    path = tmp_path / "layer_selection.yml"
    path.write_text(STEP2_FILE, encoding="utf-8")

    selection = read_layer_selection(path)

    assert selection.chosen_layer == "rconv14.out"
    assert selection.layer_shape == (512, 13, 13)
    assert selection.board_size == 13
    assert selection.extra["trunk_blocks"] == 28


def test_reads_trunk_block_style(tmp_path: Path) -> None:
    path = tmp_path / "layer_selection.yml"
    path.write_text("chosen_layer: trunk_block_13_output\n", encoding="utf-8")

    selection = read_layer_selection(path)

    assert selection.chosen_layer == "trunk_block_13_output"
    assert selection.layer_shape is None


@pytest.mark.parametrize("text", ["512×7×7", "512x7x7", " 96 × 7 × 7 (approx)"])
def test_parse_layer_shape(text: str) -> None:
    assert parse_layer_shape(text)[1:] == (7, 7)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("layer_shape: 512×7×7\n", "'chosen_layer' is missing"),
        ("chosen_layer: [a, b]\n", "'chosen_layer' is missing"),
        ("chosen_layer: rconv1.out\nlayer_shape: big\n", "'layer_shape' must read like"),
        ("chosen_layer: rconv1.out\nboard_size: seven\n", "'board_size' must be an integer"),
        ("chosen_layer: [rconv\n", "not valid YAML"),
        ("- rconv1.out\n", "must be a YAML mapping"),
    ],
)
def test_rejects_bad_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "layer_selection.yml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(LayerSelectionError, match=message) as caught:
        read_layer_selection(path)

    assert str(path) in str(caught.value)


def test_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LayerSelectionError, match="not found"):
        read_layer_selection(tmp_path / "absent.yml")
