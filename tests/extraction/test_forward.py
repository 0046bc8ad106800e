"""Batched forward pass and pooling, checked against KataGo's own reference activations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgzarr.errors import NonFiniteActivationError
from kgzarr.extraction.forward import pool_positions
from kgzarr.extraction.pooling import parse_pooling
from kgzarr.extraction.worker import forward_rows
from kgzarr.model.network import load_model

pytestmark = pytest.mark.shared

LAYERS = ["trunk_after_embedding", "rconv2.out", "trunkfinal"]


def _reference(shared_data: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(shared_data / "reference" / "activations" / name) as archive:
        return {key: archive[key] for key in archive.files if not key.startswith("_info")}


def _masked_mean(act: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, None].astype(np.float64)
    return (act * weights).sum(axis=(2, 3)) / weights.sum(axis=(2, 3))


@pytest.mark.parametrize("set_name", ["s7in9", "s19"])
def test_mean_matches_reference(shared_data: Path, set_name: str) -> None:
    data = _reference(shared_data, f"ref-b4c32__{set_name}.npz")
    rows = data["_act_rows"]
    net = load_model(shared_data / "reference" / "models" / "ref-b4c32.bin.gz")

    pooled = pool_positions(
        net, data["input.bin"][rows], data["input.global"][rows], LAYERS, parse_pooling("mean"), batch_size=3
    )

    mask = data["input.bin"][rows, 0]
    for layer in LAYERS:
        expected = _masked_mean(data[f"act.{layer}"], mask)
        np.testing.assert_allclose(pooled[layer], expected, rtol=1e-5, atol=1e-6, err_msg=layer)


def test_grid_matches_reference(shared_data: Path) -> None:
    data = _reference(shared_data, "ref-b4c32__s19.npz")
    rows = data["_act_rows"]
    net = load_model(shared_data / "reference" / "models" / "ref-b4c32.bin.gz")

    pooled = pool_positions(
        net, data["input.bin"][rows], data["input.global"][rows], ["rconv2.out"], parse_pooling("grid:3"), batch_size=2
    )["rconv2.out"]

    act = data["act.rconv2.out"]
    mask = data["input.bin"][rows, 0]
    for n in range(len(rows)):
        board_y = int(mask[n].any(axis=1).sum())
        board_x = int(mask[n].any(axis=0).sum())
        edges_y = [(0, board_y // 3), (board_y // 3, 2 * (board_y // 3)), (2 * (board_y // 3), board_y)]
        edges_x = [(0, board_x // 3), (board_x // 3, 2 * (board_x // 3)), (2 * (board_x // 3), board_x)]
        expected = np.concatenate(
            [act[n, :, y0:y1, x0:x1].mean(axis=(1, 2)) for y0, y1 in edges_y for x0, x1 in edges_x]
        )
        np.testing.assert_allclose(pooled[n], expected, rtol=1e-5, atol=1e-6)


def test_counts_forward_rows(shared_data: Path) -> None:
    data = _reference(shared_data, "ref-b4c32__s7.npz")
    net = load_model(shared_data / "reference" / "models" / "ref-b4c32.bin.gz")
    before = forward_rows()

    pool_positions(net, data["input.bin"], data["input.global"], ["rconv1.out"], parse_pooling("max"), batch_size=5)

    assert forward_rows() - before == data["input.bin"].shape[0]


def test_nonfinite_names_position(shared_data: Path) -> None:
    data = _reference(shared_data, "ref-b4c32__s7.npz")
    net = load_model(shared_data / "reference" / "models" / "ref-b4c32.bin.gz")
    global_input = data["input.global"].copy()
    global_input[13, 0] = np.inf

    with pytest.raises(NonFiniteActivationError, match="position 13 of test.npz"):
        pool_positions(
            net,
            data["input.bin"],
            global_input,
            ["rconv1.out"],
            parse_pooling("mean"),
            batch_size=8,
            describe_row=lambda row: f"position {row} of test.npz",
        )
