"""KataGoNet against activations computed by KataGo's own PyTorch training code.

Every reference file holds inputs, the ExtraOutputs tensors of KataGo v1.17.2's
training model for some rows, and the head outputs the model file can
reproduce. Trunk tensors are compared on-board only, because KataGo leaves
garbage off-board (the embedding broadcasts the global bias everywhere and
3x3 convs spill over the edge).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgzarr.model.network import KataGoNet, load_model

NETS = [
    "b1c6nbt",
    "b1c6nbt-bn",
    "b1c6nbt-silu",
    "b1c6nbt-rsnh",
    "b1c6nbt-meta",
    "b2c16",
    "b2c16-v11",
    "b2c16-v13",
    "b2c16-v16",
    "b4c32",
    "b4c32-v12",
    "b6c96",
    "b7c96h3tfrs",
]
SETS = ["s7", "s7in9", "s19"]
CASES = [f"ref-{net}__{input_set}" for net in NETS for input_set in SETS]

# Relative tolerance in float32: max |difference| <= TOLERANCE * max(1, max |reference|).
TOLERANCE = 1e-4

pytestmark = pytest.mark.shared


@functools.lru_cache(maxsize=None)
def _net(path: str) -> KataGoNet:
    return load_model(path)


def _load_case(shared_data: Path, case: str) -> tuple[KataGoNet, dict[str, np.ndarray], dict]:
    path = shared_data / "reference" / "activations" / f"{case}.npz"
    if not path.is_file():
        pytest.skip(f"reference file {path} is absent")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    info = json.loads(str(arrays["_info_json"]))
    net = _net(str(shared_data / "reference" / "models" / info["model_file"]))
    return net, arrays, info


def _inputs(arrays: dict[str, np.ndarray], rows: np.ndarray | slice) -> tuple[torch.Tensor, ...]:
    binary = torch.from_numpy(arrays["input.bin"][rows])
    global_ = torch.from_numpy(arrays["input.global"][rows])
    meta = torch.from_numpy(arrays["input.meta"][rows]) if "input.meta" in arrays else None
    return binary, global_, meta


def _scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(1.0, float(np.abs(expected).max())))


@pytest.mark.parametrize("case", CASES)
def test_layer_names_equal_katago(shared_data: Path, case: str) -> None:
    net, _, info = _load_case(shared_data, case)
    assert net.layer_names() == info["reported_names_in_order"]


@pytest.mark.parametrize("case", CASES)
def test_captured_layers_match(shared_data: Path, case: str) -> None:
    net, arrays, info = _load_case(shared_data, case)
    rows = arrays["_act_rows"]
    binary, global_, meta = _inputs(arrays, rows)
    stored = [key.removeprefix("act.") for key in arrays if key.startswith("act.")]
    aliases = info["aliases"]
    captured = net.capture(binary, global_, stored + list(aliases), metadata_input=meta)

    on_board = arrays["input.bin"][rows][:, 0:1]
    assert stored, f"{case} stores no activations"
    for name in stored + list(aliases):
        expected = arrays["act." + aliases.get(name, name)] * on_board
        actual = captured[name].numpy() * on_board
        assert actual.shape == expected.shape, f"{case} {name}: shape {actual.shape} != {expected.shape}"
        assert np.abs(expected).max() > 0, f"{case} {name}: reference is all zero on-board"
        assert _scaled_error(actual, expected) <= TOLERANCE, f"{case} {name}"


@pytest.mark.parametrize("case", CASES)
def test_heads_match(shared_data: Path, case: str) -> None:
    net, arrays, _ = _load_case(shared_data, case)
    binary, global_, meta = _inputs(arrays, slice(None))
    heads = net(binary, global_, meta)

    batch, _, height, width = binary.shape
    points = height * width
    on_board = arrays["input.bin"][:, 0].reshape(batch, 1, points)
    policy = arrays["exported.policy"]
    # Off-board reference entries are logit - 5000 (the training model's mask), so compare on-board only.
    actual_policy = heads["policy"].numpy().reshape(batch, -1, points)
    assert _scaled_error(actual_policy * on_board, policy[:, :, :points] * on_board) <= TOLERANCE
    assert _scaled_error(heads["pass"].numpy(), policy[:, :, points]) <= TOLERANCE
    assert _scaled_error(heads["value"].numpy(), arrays["exported.value"]) <= TOLERANCE
    assert _scaled_error(heads["miscvalue"].numpy(), arrays["exported.miscvalue"]) <= TOLERANCE
    assert _scaled_error(heads["ownership"].numpy(), arrays["out.ownership"]) <= TOLERANCE


@pytest.mark.parametrize("case", ["ref-b7c96h3tfrs__s7", "ref-b7c96h3tfrs__s7in9"])
def test_attention_weights_match(shared_data: Path, case: str) -> None:
    net, arrays, _ = _load_case(shared_data, case)
    rows = arrays["_attn_rows"]
    binary, global_, _ = _inputs(arrays, rows)
    stored = [key.removeprefix("attn.") for key in arrays if key.startswith("attn.")]
    captured = net.capture(binary, global_, stored)

    # Off-board query rows are finite garbage in the reference, so compare on-board queries only.
    on_board_queries = arrays["input.bin"][rows][:, 0].reshape(len(rows), 1, -1, 1)
    assert len(stored) == 7
    for name in stored:
        expected = arrays["attn." + name] * on_board_queries
        actual = captured[name].numpy() * on_board_queries
        assert actual.shape == expected.shape, name
        assert _scaled_error(actual, expected) <= TOLERANCE, f"{case} {name}"


@pytest.mark.parametrize("case", ["ref-b6c96__s19", "ref-b7c96h3tfrs__s7"])
def test_float64_agrees_with_reference(shared_data: Path, case: str) -> None:
    """A float64 network stays within float32 rounding of the reference."""
    _, arrays, info = _load_case(shared_data, case)
    net = load_model(shared_data / "reference" / "models" / info["model_file"], dtype=torch.float64)
    rows = arrays["_act_rows"]
    binary, global_, meta = _inputs(arrays, rows)
    captured = net.capture(binary, global_, ["trunkfinal"], metadata_input=meta)

    assert captured["trunkfinal"].dtype == torch.float64
    on_board = arrays["input.bin"][rows][:, 0:1]
    assert _scaled_error(captured["trunkfinal"].numpy() * on_board, arrays["act.trunkfinal"] * on_board) <= 1e-5
