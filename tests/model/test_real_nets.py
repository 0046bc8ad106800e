"""Trained KataGo nets on genuine 7x7 self-play positions.

The raw policy's top move should usually equal the top move of the search
policy target that KataGo's self-play wrote for the same position. Measured on
the first 3 tdata files in name order (1027 rows), float32, CPU:
b7c96h3tfrs-test5-cnorm 0.658, b7c96h6kv3qk32v16tflrs-fson-bnh 0.636,
g170-b6c96 0.666; a uniform pick among empty points and pass scores 0.034.
A wrong RoPE axis order drops the tflrs net to about 0.55, and a wrong
grouped-query head mapping to about 0.11.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from kgzarr.model.network import load_model

pytestmark = pytest.mark.shared

# Net file -> (published sha256 of the file, minimum top-1 agreement).
NETS = {
    "g170-b6c96-s175395328-d26788732.bin.gz": (
        "f5d32604e3675c480c7c8f6aa579a1ea857135628a0afccc8fa56330fbacd38d",
        0.60,
    ),
    "b7c96h3tfrs-test5-cnorm.bin.gz": (
        "e0c11d1d2532af0b89792605e4d9edcca15bf6a0589bf28b967e6358277941b8",
        0.60,
    ),
    "b7c96h6kv3qk32v16tflrs-fson-bnh.bin.gz": (
        "3e56eedcda8f997dcdc0d18324fa8390ea10e3dd687cbf5d0d4ed66674d3f74f",
        0.58,
    ),
}
SELFPLAY_FILES = 3
BOARD = 7


@functools.lru_cache(maxsize=1)
def _positions(folder: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    files = sorted(Path(folder).glob("**/tdata/*.npz"))[:SELFPLAY_FILES]
    binaries, globals_, targets = [], [], []
    for path in files:
        with np.load(path) as archive:
            packed = archive["binaryInputNCHWPacked"]
            rows = packed.shape[0]
            bits = np.unpackbits(packed, axis=-1)[..., : BOARD * BOARD]
            binaries.append(bits.reshape(rows, 22, BOARD, BOARD).astype(np.float32))
            globals_.append(archive["globalInputNC"])
            targets.append(archive["policyTargetsNCMove"][:, 0, :])
    binary = torch.from_numpy(np.concatenate(binaries))
    return binary, torch.from_numpy(np.concatenate(globals_)), np.concatenate(targets)


def _top_moves(heads: dict[str, torch.Tensor]) -> np.ndarray:
    """Return the argmax over the 49 points and pass (index 49) of policy channel 0."""
    spatial = heads["policy"][:, 0].flatten(1)
    logits = torch.cat((spatial, heads["pass"][:, 0:1]), dim=1)
    return logits.argmax(dim=1).numpy()


@pytest.mark.parametrize("net_file", list(NETS))
def test_policy_matches_search(shared_data: Path, net_file: str) -> None:
    binary, global_, targets = _positions(str(shared_data / "selfplay7"))
    net = load_model(shared_data / "models" / net_file)
    heads = net(binary, global_)

    agreement = float((_top_moves(heads) == targets.argmax(axis=1)).mean())
    assert len(targets) > 1000
    assert agreement >= NETS[net_file][1], f"{net_file}: top-1 agreement {agreement:.3f}"
    assert agreement > 10 * _chance_agreement(binary)


def _chance_agreement(binary: torch.Tensor) -> float:
    """Return the expected agreement of a uniform pick among empty points and pass."""
    stones = (binary[:, 1] + binary[:, 2]).flatten(1)
    choices = (stones == 0).sum(dim=1) + 1
    return float((1.0 / choices).mean())


@pytest.mark.parametrize("net_file", list(NETS))
def test_real_net_loads(shared_data: Path, net_file: str) -> None:
    path = shared_data / "models" / net_file
    net = load_model(path)
    assert net.sha256 == NETS[net_file][0]
    assert net.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert net.trunk_channels == 96


def test_v8_net_heads(shared_data: Path) -> None:
    net = load_model(shared_data / "models" / "g170-b6c96-s175395328-d26788732.bin.gz")
    binary, global_, _ = _positions(str(shared_data / "selfplay7"))
    heads = net(binary[:8], global_[:8])
    assert net.version == 8
    assert net.layer_names()[1:4] == ["rconv1.normactconv1.out", "rconv1.normactconv2.out", "rconv1.out"]
    assert tuple(heads["policy"].shape) == (8, 1, 7, 7)
    assert tuple(heads["miscvalue"].shape) == (8, 4)
    assert bool(torch.isfinite(heads["value"]).all())
