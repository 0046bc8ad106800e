"""The embedded example: `kgzarr demo` needs nothing downloaded and leaves the documented outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def test_demo_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "demo"

    result = subprocess.run(
        [sys.executable, "-m", "kgzarr", "demo", "--out", str(out), "--positions", "200"],
        capture_output=True,
        text=True,
        timeout=600,
    )

    activations = out / "activations"
    matrix = np.load(activations / "pooled_rconv2.out.npy")
    meta = json.loads((activations / "pooled_meta.json").read_text())
    index = (activations / "pos_index_to_npz.txt").read_text().splitlines()
    assert result.returncode == 0, result.stderr
    assert matrix.shape == (200, 32)
    assert matrix.dtype == np.float32
    assert matrix.min() >= 0.0
    assert matrix.max() <= 1.0
    assert len(index) == 200
    assert all(Path(line).is_file() for line in set(index))
    assert meta["model"]["name"] == "demo-b4c32"
    assert "200 positions" in result.stdout


def test_demo_rerun_same_result(tmp_path: Path) -> None:
    """Running the demo twice into the same folder replaces its results with identical ones."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "kgzarr", "demo", "--out", str(out), "--positions", "150", "--quiet"]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    first = np.load(out / "activations" / "pooled_rconv2.out.npy")

    subprocess.run(command, check=True, capture_output=True, timeout=600)

    np.testing.assert_array_equal(np.load(out / "activations" / "pooled_rconv2.out.npy"), first)
