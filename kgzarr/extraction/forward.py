"""Run a network over unpacked positions in batches and pool the requested layers.

This is the inner loop of every chunk task, so it avoids per-row Python. The
float32 planes become torch tensors without a copy, and each batch runs once
for all requested layers. Pooling happens on the device, before the
(N, columns) result moves to numpy.

On a CUDA device the chunk's planes are copied once into pinned (page-locked)
host memory, so each batch reaches the GPU by an asynchronous copy. A batch
that runs out of GPU memory is retried at half its size (see
:func:`run_in_batches`) instead of failing the extract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from kgzarr.errors import NonFiniteActivationError
from kgzarr.extraction.device import autocast
from kgzarr.extraction.pooling import Pooling, pool
from kgzarr.extraction.worker import count_forward_rows

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = ["pool_positions", "run_in_batches"]

logger = logging.getLogger(__name__)


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
    on_batch_halved: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Return the pooled values of each layer, float32 (N, columns), for NCHW inputs.

    ``binary_input`` may be uint8 (0/1 planes as unpacked from the store). It
    is converted to float32 one batch at a time, on the device. That keeps a
    chunk's float copy of the planes out of memory and sends 4x fewer bytes to
    a GPU.

    ``autocast_dtype`` (bf16 or fp16, CUDA only) runs the network under
    ``torch.autocast``; pooling always runs in float32. A NaN or inf in a
    pooled value raises NonFiniteActivationError naming the position through
    ``describe_row(row)``. ``on_batch_halved(size)`` is called when CUDA ran
    out of memory and the batch size dropped to ``size``.
    """
    rows = binary_input.shape[0]
    device = _device_of(net)
    binary = _host_tensor(binary_input, device)
    global_ = _host_tensor(global_input, device)
    results: dict[str, np.ndarray] = {}

    def pool_rows(start: int, stop: int) -> None:
        batch_binary = binary[start:stop].to(device, non_blocking=True).to(torch.float32)
        batch_global = global_[start:stop].to(device, non_blocking=True)
        pooled = _pool_batch(net, batch_binary, batch_global, layers, pooling, autocast_dtype)
        for layer, values in pooled.items():
            _check_finite(values, layer, start, describe_row)
            if layer not in results:
                results[layer] = np.empty((rows, values.shape[1]), dtype=np.float32)
            results[layer][start:stop] = values.cpu().numpy()
        count_forward_rows(stop - start)

    run_in_batches(pool_rows, rows, batch_size, on_halved=on_batch_halved)
    return results


def run_in_batches(
    run_batch: Callable[[int, int], None],
    rows: int,
    batch_size: int,
    *,
    out_of_memory: type[BaseException] = torch.cuda.OutOfMemoryError,
    on_halved: Callable[[int], None] | None = None,
) -> int:
    """Call ``run_batch(start, stop)`` over rows [0, rows) in batches; return the last batch size.

    A batch that raises ``out_of_memory`` runs again at half its size, and
    later batches keep the smaller size. Each halving is logged and reported
    to ``on_halved``. A batch of one row that still runs out of memory
    re-raises the error, because no smaller batch exists.
    """
    start = 0
    while start < rows:
        stop = min(start + batch_size, rows)
        error = _run_batch_or_error(run_batch, start, stop, out_of_memory)
        if error is None:
            start = stop
            continue
        if stop - start == 1:
            logger.error("a batch of 1 position ran out of device memory; the network does not fit on this device")
            raise error

        # Dropping the error frees the tensors its traceback references before the retry.
        error = None
        _release_cached_memory()
        batch_size = max(1, (stop - start) // 2)
        logger.warning(
            "device out of memory at batch size %d (rows %d-%d of this chunk); retrying at batch size %d",
            stop - start, start, stop, batch_size,
        )
        if on_halved is not None:
            on_halved(batch_size)
    return batch_size


def _run_batch_or_error(
    run_batch: Callable[[int, int], None], start: int, stop: int, out_of_memory: type[BaseException]
) -> BaseException | None:
    """Run one batch; return its out-of-memory error instead of raising it."""
    try:
        run_batch(start, stop)
    except out_of_memory as exc:
        return exc
    return None


def _release_cached_memory() -> None:
    # NOTE: GPU-only and untested here (no GPU in CI): returns the failed
    # batch's blocks from PyTorch's caching allocator before the retry.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _device_of(net: KataGoNet) -> torch.device:
    parameter = next(net.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def _host_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Wrap ``array`` without a copy for a CPU network; copy it into pinned memory for a GPU one."""
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor
    # NOTE: GPU-only and untested here. Pinned memory lets the per-batch
    # .to(device, non_blocking=True) copies overlap with the forward pass.
    return tensor.pin_memory()


def _pool_batch(
    net: KataGoNet,
    binary: torch.Tensor,
    global_: torch.Tensor,
    layers: Sequence[str],
    pooling: Pooling,
    autocast_dtype: torch.dtype | None,
) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        with autocast(binary.device, autocast_dtype):
            captured = net.capture(binary, global_, list(layers))
        # Pooling runs outside autocast, so its sums and the grid's bmm stay
        # float32 even when the network ran in bf16 or fp16.
        mask = binary[:, 0]
        return {layer: pool(activations, mask.to(activations.device), pooling) for layer, activations in captured.items()}


def _check_finite(values: torch.Tensor, layer: str, first_row: int, describe_row: Callable[[int], str]) -> None:
    finite = torch.isfinite(values).all(dim=1)
    if bool(finite.all()):
        return
    row = first_row + int((~finite).nonzero()[0, 0])
    raise NonFiniteActivationError(
        f"layer {layer} is NaN or infinite for {describe_row(row)}; the network or that position is broken. "
        "Check the model file, or leave that source file out and ingest again"
    )
