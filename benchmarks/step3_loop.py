"""A re-implementation of the extraction loop of ai_go_explain's step 3, as the baseline to beat.

ai_go_explain's ``3_extract_activations/extract_pooled_activations.py``
(lets-getitnow/ai_go_explain) works like this, and so does this module:

- count the rows of every file first (one ``np.load`` of the packed planes per file);
- decode each ``.npz`` in full: ``np.load``, ``np.unpackbits`` along the last
  axis, drop the padding bits, reshape to (N, 22, L, L), convert to float32
  (twice, as the script does), and convert the global inputs to float32;
- append every row on its own to Python lists of pending rows and paths;
- whenever ``batch_size`` rows are pending, ``torch.stack`` the per-row arrays
  and run the whole network (every trunk block and both heads), capturing the
  requested layer in the same pass. Then check the layer for NaN and pool it
  as the mean over each cell of a 3x3 grid of the board (bins of ``L // 3``
  points, the last running to the edge). Append the pooled batch, and every
  row's policy and value outputs, to lists;
- at the end, concatenate the pooled batches, shift each column to a minimum
  of zero and divide it by its maximum, and turn the per-row head outputs into
  arrays. The script raised on a column that is zero after the shift; here
  such a column stays zero, so that random benchmark nets cannot stop a run.

The script ran KataGo's own PyTorch training model with ``ExtraOutputs``.
Here kgzarr's :class:`~kgzarr.model.network.KataGoNet` stands in for it:
``capture`` with the layer and every head output runs the full forward pass
once and returns the layer as well. The script's progress prints are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kgzarr.model.names import HEAD_OUTPUTS
from kgzarr.model.network import KataGoNet

__all__ = ["decode_file", "run_step3_loop"]


def decode_file(path: Path, board_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the float32 (N, 22, L, L) planes and (N, 19) global inputs of one training file."""
    with np.load(path) as data:
        packed = data["binaryInputNCHWPacked"]
        global_input = data["globalInputNC"]
    bits = np.unpackbits(packed, axis=2)[:, :, : board_size * board_size]
    planes = bits.reshape(bits.shape[0], bits.shape[1], board_size, board_size).astype(np.float32)
    return planes.astype(np.float32), global_input.astype(np.float32)


def _grid_pool(activations: torch.Tensor) -> torch.Tensor:
    """Mean of each channel over each cell of a 3x3 grid, cell-major: (N, 9 * C)."""
    side = activations.shape[2]
    step = side // 3
    edges = [(i * step, (i + 1) * step if i < 2 else side) for i in range(3)]
    cells = [activations[:, :, r0:r1, c0:c1].mean(dim=(-1, -2)) for r0, r1 in edges for c0, c1 in edges]
    return torch.cat(cells, dim=1)


class _Batches:
    """The pending rows and everything collected from the batches run so far."""

    def __init__(self, net: KataGoNet, layer: str, batch_size: int) -> None:
        self.net = net
        self.requested = [layer, *HEAD_OUTPUTS]
        self.layer = layer
        self.batch_size = batch_size
        self.pending_planes: list[np.ndarray] = []
        self.pending_globals: list[np.ndarray] = []
        self.pending_paths: list[str] = []
        self.pooled: list[np.ndarray] = []
        self.index: list[str] = []
        self.policy: list[np.ndarray] = []
        self.value: list[np.ndarray] = []

    def add(self, planes: np.ndarray, global_input: np.ndarray, path: str) -> None:
        self.pending_planes.append(planes)
        self.pending_globals.append(global_input)
        self.pending_paths.append(path)
        if len(self.pending_planes) == self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending_planes:
            return
        planes = torch.stack([torch.from_numpy(row) for row in self.pending_planes], dim=0)
        global_input = torch.stack([torch.from_numpy(row) for row in self.pending_globals], dim=0)
        with torch.no_grad():
            outputs = self.net.capture(planes, global_input, self.requested)
        activations = outputs[self.layer]
        if torch.isnan(activations).any():
            raise ValueError(f"NaN in layer {self.layer}")

        self.pooled.append(_grid_pool(activations).cpu().numpy())
        self.index.extend(self.pending_paths)
        policy = outputs["policy"].cpu().numpy()
        value = outputs["value"].cpu().numpy()
        for row in range(len(self.pending_paths)):
            self.policy.append(policy[row])
            self.value.append(value[row])

        self.pending_planes.clear()
        self.pending_globals.clear()
        self.pending_paths.clear()


def run_step3_loop(
    net: KataGoNet, files: Sequence[Path], layer: str, batch_size: int, board_size: int
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Return the shifted and scaled (N, 9 * C) matrix, the row -> file index, and the policy and value outputs."""
    total = 0
    for path in files:
        with np.load(path) as data:
            total += data["binaryInputNCHWPacked"].shape[0]

    batches = _Batches(net, layer, batch_size)
    for path in files:
        planes, global_input = decode_file(path, board_size)
        for row in range(planes.shape[0]):
            batches.add(planes[row], global_input[row], str(path))
    batches.flush()

    matrix = np.concatenate(batches.pooled, axis=0)
    if matrix.shape[0] != total:
        raise ValueError(f"pooled {matrix.shape[0]} rows, but the files hold {total}")
    minimum = matrix.min(axis=0, keepdims=True)
    if (minimum < 0).any():
        matrix = matrix - minimum
    maximum = matrix.max(axis=0, keepdims=True)
    maximum[maximum == 0] = 1.0
    matrix = matrix / maximum
    return matrix, batches.index, np.array(batches.policy), np.array(batches.value)
