"""GPU code paths that run on CPU too: halving the batch on out-of-memory, autocast, host tensors; CUDA when present."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from kgzarr.extraction.device import autocast
from kgzarr.extraction.forward import _host_tensor, pool_positions, run_in_batches
from kgzarr.extraction.pooling import parse_pooling
from kgzarr.extraction.worker import batch_size_limit, limit_batch_size
from kgzarr.model.network import KataGoNet
from kgzarr.model.synthetic import random_model

LAYERS = ["rconv1.out", "trunk_after_block1"]


class SimulatedOutOfMemory(Exception):
    """Stands in for torch.cuda.OutOfMemoryError in tests of the halving logic."""


def _limited(max_rows: int, seen: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def run_batch(start: int, stop: int) -> None:
        seen.append((start, stop))
        if stop - start > max_rows:
            raise SimulatedOutOfMemory(f"{stop - start} rows do not fit")

    return run_batch


class OutOfMemoryAbove:
    """A network wrapper whose forward pass raises CUDA's out-of-memory error for batches above ``max_rows``."""

    def __init__(self, net: KataGoNet, max_rows: int) -> None:
        self.net = net
        self.max_rows = max_rows
        self.batches: list[int] = []

    def parameters(self):  # type: ignore[no-untyped-def]
        return self.net.parameters()

    def capture(self, binary: torch.Tensor, global_: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        self.batches.append(binary.shape[0])
        if binary.shape[0] > self.max_rows:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated in a test)")
        return self.net.capture(binary, global_, layers)


@pytest.fixture(scope="module")
def net() -> KataGoNet:
    desc = random_model("gpu-paths", num_blocks=2, trunk_channels=16, mid_channels=16, gpool_channels=8, seed=3)
    return KataGoNet.from_desc(desc)


@pytest.fixture(scope="module")
def inputs(net: KataGoNet) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    binary = (rng.random((70, net.num_input_channels, 7, 7)) < 0.3).astype(np.float32)
    binary[:, 0] = 1.0
    global_input = rng.standard_normal((70, 19)).astype(np.float32) * 0.1
    return binary, global_input


def test_halving_until_batch_fits(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[int, int]] = []
    halved: list[int] = []

    with caplog.at_level(logging.WARNING, logger="kgzarr.extraction.forward"):
        final = run_in_batches(_limited(10, seen), 50, 32, out_of_memory=SimulatedOutOfMemory, on_halved=halved.append)

    assert final == 8
    assert halved == [16, 8]
    assert seen[:3] == [(0, 32), (0, 16), (0, 8)]
    done = [batch for batch in seen if batch[1] - batch[0] <= 10]
    assert done == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40), (40, 48), (48, 50)]
    assert "out of memory at batch size 32" in caplog.text
    assert "retrying at batch size 16" in caplog.text


def test_halving_gives_up_at_one_row(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[int, int]] = []

    with pytest.raises(SimulatedOutOfMemory, match="1 rows do not fit"):
        run_in_batches(_limited(0, seen), 5, 4, out_of_memory=SimulatedOutOfMemory)

    assert [stop - start for start, stop in seen] == [4, 2, 1]
    assert "a batch of 1 position ran out of device memory" in caplog.text


def test_other_errors_not_retried() -> None:
    seen: list[tuple[int, int]] = []

    def failing(start: int, stop: int) -> None:
        seen.append((start, stop))
        raise ValueError("not a memory error")

    with pytest.raises(ValueError, match="not a memory error"):
        run_in_batches(failing, 10, 4, out_of_memory=SimulatedOutOfMemory)

    assert seen == [(0, 4)]


def test_pool_positions_after_oom(net: KataGoNet, inputs: tuple[np.ndarray, np.ndarray]) -> None:
    """Pins that a CUDA out-of-memory error halves the batch and leaves the pooled values unchanged."""
    binary, global_input = inputs
    expected = pool_positions(net, binary, global_input, LAYERS, parse_pooling("mean-max"), 70)
    limited = OutOfMemoryAbove(net, max_rows=20)
    halved: list[int] = []

    result = pool_positions(limited, binary, global_input, LAYERS, parse_pooling("mean-max"), 70, on_batch_halved=halved.append)  # type: ignore[arg-type]

    assert halved == [35, 17]
    assert limited.batches[:3] == [70, 35, 17]
    for layer in LAYERS:
        np.testing.assert_allclose(result[layer], expected[layer], rtol=1e-5, atol=1e-6, err_msg=layer)


def test_batch_limit_kept_per_key() -> None:
    key = ("sha", "cuda", ("rconv1.out",), "fp32", 19, 19)
    other = ("sha", "cuda", ("rconv1.out",), "fp32", 7, 7)

    limit_batch_size(key, 128)
    limit_batch_size(key, 256)

    assert batch_size_limit(key, 512) == 128
    assert batch_size_limit(key, 64) == 64
    assert batch_size_limit(other, 512) == 512


def test_autocast_bf16_close_to_fp32(net: KataGoNet, inputs: tuple[np.ndarray, np.ndarray]) -> None:
    """Runs the autocast path on CPU: the values are float32 and within bf16 rounding of fp32."""
    binary, global_input = inputs
    fp32 = pool_positions(net, binary, global_input, LAYERS, parse_pooling("grid:2"), 32)

    bf16 = pool_positions(net, binary, global_input, LAYERS, parse_pooling("grid:2"), 32, autocast_dtype=torch.bfloat16)

    for layer in LAYERS:
        assert bf16[layer].dtype == np.float32
        scale = np.abs(fp32[layer]).max()
        assert np.abs(bf16[layer] - fp32[layer]).max() < 0.05 * scale, layer
        assert not np.array_equal(bf16[layer], fp32[layer]), f"{layer}: autocast had no effect"


def test_autocast_context() -> None:
    cpu = torch.device("cpu")

    assert not isinstance(autocast(cpu, None), torch.autocast)
    assert not isinstance(autocast(cpu, torch.float32), torch.autocast)
    assert isinstance(autocast(cpu, torch.bfloat16), torch.autocast)


def test_host_tensor_cpu_shares_memory() -> None:
    array = np.ones((4, 3), dtype=np.float32)

    tensor = _host_tensor(array, torch.device("cpu"))

    assert tensor.data_ptr() == array.ctypes.data
    assert not tensor.is_pinned()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(net: KataGoNet, inputs: tuple[np.ndarray, np.ndarray]) -> None:
    binary, global_input = inputs
    expected = pool_positions(net, binary, global_input, LAYERS, parse_pooling("mean"), 32)
    on_gpu = KataGoNet.from_desc(random_model("gpu-paths", num_blocks=2, trunk_channels=16, mid_channels=16, gpool_channels=8, seed=3)).to("cuda")

    result = pool_positions(on_gpu, binary, global_input, LAYERS, parse_pooling("mean"), 32)

    assert _host_tensor(binary, torch.device("cuda")).is_pinned()
    for layer in LAYERS:
        # cuDNN may use TF32 for float32 convolutions on Ampere and newer GPUs (PyTorch's default).
        np.testing.assert_allclose(result[layer], expected[layer], rtol=2e-3, atol=2e-3, err_msg=layer)
