"""The subcommands end to end through the real CLI, on real model files and self-play data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kgzarr.cli import main

V8_MODEL = "models/g170-b6c96-s175395328-d26788732.bin.gz"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kgzarr", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.shared
def test_layers_json(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["layers", "--model", str(shared_data / V8_MODEL), "--board-size", "7", "--json", "--quiet"])
    layers = json.loads(capsys.readouterr().out)
    by_name = {layer["name"]: layer for layer in layers}
    assert code == 0
    assert by_name["rconv3.out"]["shape"] == [96, 7, 7]
    assert "trunk_block_2_output" in by_name["trunk_after_block2"]["aliases"]
    assert by_name["trunkfinal"]["kind"] == "trunk"


@pytest.mark.shared
def test_pick_layer_middle_block(shared_data: Path, tmp_path: Path) -> None:
    """A 6-block net gets the residual of block 3 (counted from 1), as the pipeline picks rconv14 of 28."""
    out = tmp_path / "layer_selection.yml"
    code = main(["pick-layer", "--model", str(shared_data / V8_MODEL), "--out", str(out), "--quiet"])
    selection = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert code == 0
    assert selection["chosen_layer"] == "rconv3.out"
    assert selection["layer_shape"] == "96×7×7"
    assert selection["trunk_blocks"] == 6
    assert selection["board_size"] == 7


@pytest.mark.shared
def test_pick_layer_unknown_name(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "layer_selection.yml"
    code = main(["pick-layer", "--model", str(shared_data / V8_MODEL), "--choose", "rconv3.outt", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "rconv3.out" in err
    assert not out.exists()


@pytest.mark.shared
def test_step3_command_line(shared_data: Path, tmp_path: Path) -> None:
    """ai_go_explain's step-3 command line runs unchanged and writes ./activations."""
    (tmp_path / "layer_selection.yml").write_text("chosen_layer: trunk_block_3_output\nlayer_shape: 96×7×7\n")
    positions = os.path.relpath(shared_data / "selfplay7", tmp_path)
    model = os.path.relpath(shared_data / V8_MODEL, tmp_path)

    result = run_cli(
        "extract", "--positions-dir", positions, "--model-path", model,
        "--board-size", "7", "--batch-size", "512", "--device", "cpu", "--quiet",
        cwd=tmp_path,
    )

    matrix = np.load(tmp_path / "activations" / "pooled_trunk_block_3.npy")
    lines = (tmp_path / "activations" / "pos_index_to_npz.txt").read_text().splitlines()
    assert result.returncode == 0, result.stderr
    assert matrix.shape == (3654, 96)
    assert matrix.min() >= 0.0
    assert matrix.max() == pytest.approx(1.0)
    assert len(lines) == 3654
    assert all((tmp_path / line).is_file() for line in set(lines))


@pytest.mark.shared
def test_info_text(shared_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "positions.zarr"
    assert main(["ingest", str(shared_data / "selfplay_mixed"), "--store", str(store), "--quiet"]) == 0

    result = run_cli("info", str(store))

    assert result.returncode == 0, result.stderr
    assert "rows: 1237" in result.stdout
    assert "5x5: 323" in result.stdout
