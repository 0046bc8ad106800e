"""Run a network over unpacked positions in batches and pool the requested layers.

This is the inner loop of every chunk task, so it avoids per-row Python. The
float32 planes become torch tensors without a copy, and each batch runs once
for all requested layers. Pooling happens on the device, before the
(N, columns) result moves to numpy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from kgzarr.errors import NonFiniteActivationError
from kgzarr.extraction.pooling import Pooling, pool
from kgzarr.extraction.worker import count_forward_rows

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = ["pool_positions"]


def pool_positions(
    net: KataGoNet,
    binary_input: np.ndarray,
    global_input: np.ndarray,
    layers: Sequence[str],
    pooling: Pooling,
    batch_size: int,
    *,
    autocast_dtype: torch.dtype | None = None,
    describe_row: Callable[[int], str] = lambda row: f"row {row}",
) -> dict[str, np.ndarray]:
    """Return the pooled values of each layer, float32 (N, columns), for float32 NCHW inputs.

    ``autocast_dtype`` (bf16 or fp16, CUDA only) runs the network under
    ``torch.autocast``; pooling always runs in float32. A NaN or inf in a
    pooled value raises NonFiniteActivationError naming the position through
    ``describe_row(row)``.
    """
    rows = binary_input.shape[0]
    binary = torch.from_numpy(binary_input)
    global_ = torch.from_numpy(global_input)
    results: dict[str, np.ndarray] = {}

    for start in range(0, rows, batch_size):
        stop = min(start + batch_size, rows)
        pooled = _pool_batch(net, binary[start:stop], global_[start:stop], layers, pooling, autocast_dtype)
        count_forward_rows(stop - start)

        for layer, values in pooled.items():
            _check_finite(values, layer, start, describe_row)
            if layer not in results:
                results[layer] = np.empty((rows, values.shape[1]), dtype=np.float32)
            results[layer][start:stop] = values.cpu().numpy()
    return results


def _pool_batch(
    net: KataGoNet,
    binary: torch.Tensor,
    global_: torch.Tensor,
    layers: Sequence[str],
    pooling: Pooling,
    autocast_dtype: torch.dtype | None,
) -> dict[str, torch.Tensor]:
    autocast = (
        torch.autocast(device_type="cuda", dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        captured = net.capture(binary, global_, list(layers))
        mask = None
        pooled = {}
        for layer, activations in captured.items():
            if mask is None:
                mask = binary[:, 0].to(activations.device)
            pooled[layer] = pool(activations, mask, pooling)
    return pooled


def _check_finite(values: torch.Tensor, layer: str, first_row: int, describe_row: Callable[[int], str]) -> None:
    finite = torch.isfinite(values).all(dim=1)
    if bool(finite.all()):
        return
    row = first_row + int((~finite).nonzero()[0, 0])
    raise NonFiniteActivationError(
        f"layer {layer} is NaN or infinite for {describe_row(row)}; the network or that position is broken. "
        "Check the model file, or leave that source file out and ingest again"
    )
