"""Check kgzarr's forward pass on a CUDA GPU: agreement with the CPU, then rows/s of large networks.

Run on a machine with a CUDA GPU, from the repository root::

    python benchmarks/gpu_check.py            # about 5 minutes on a recent data-centre GPU (an estimate)
    python benchmarks/gpu_check.py --quick    # one batch size, 7x7 and 19x19, fp32 and bf16

Part 1 runs each network through ``pool_positions``, the function chunk tasks
call, on the CPU in float32 and on the GPU in bf16, fp16 and fp32. fp32 runs
twice: with cuDNN's TF32 convolutions allowed (PyTorch's default) and
disallowed. It prints the largest pooled difference relative to the largest
CPU value. The networks are KataGoNet's reference models in
``../shared/data/reference/models`` with their recorded inputs when that
folder exists, otherwise small random networks and random positions.

Part 2 times ``pool_positions`` (pinned host memory, asynchronous copies,
autocast, pooling on the GPU, results back to numpy) for random networks of
the b18c384nbt and b28c512nbt shapes, capturing the last trunk block, at
7x7 and 19x19, for several batch sizes. A batch size that runs out of GPU
memory is halved by kgzarr itself; the table then shows the size that ran.

``--device cpu`` runs part 1 with CPU autocast (bf16 and fp16) in place of
the GPU, which gives an estimate of the reduced-precision error on a machine
without one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, machine_lines, print_table  # noqa: E402

from kgzarr.extraction.forward import pool_positions  # noqa: E402
from kgzarr.extraction.pooling import parse_pooling  # noqa: E402
from kgzarr.model.network import KataGoNet, load_model  # noqa: E402
from kgzarr.model.synthetic import random_model  # noqa: E402

REFERENCE = SHARED_DATA / "reference"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SHAPES = {
    "b18c384nbt": {"num_blocks": 18, "trunk_channels": 384, "mid_channels": 192, "gpool_channels": 64, "nested": True},
    "b28c512nbt": {"num_blocks": 28, "trunk_channels": 512, "mid_channels": 256, "gpool_channels": 64, "nested": True},
}


def main() -> int:
    args = _parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU here; run it on a GPU machine, or pass --device cpu for part 1 only")
        return 2

    _print_machine(device)
    print("\n## Part 1: pooled values against the CPU in float32\n")
    print_table(["network", "positions", "precision", "max |diff| / max |cpu|", "max |diff|"], agreement_rows(device, args.reference))
    if device.type == "cuda":
        print("\n## Part 2: rows/s of pool_positions, last trunk block, mean pooling\n")
        batch_sizes = [256] if args.quick else args.batch_sizes
        precisions = ["fp32", "bf16"] if args.quick else list(PRECISIONS)
        print_table(["network", "board", "precision", "batch asked", "batch run", "rows/s"], throughput_rows(device, batch_sizes, precisions))
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu for part 1 with CPU autocast (default: cuda)")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help=f"KataGo reference folder (default: {REFERENCE})")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024], help="batch sizes of part 2")
    parser.add_argument("--quick", action="store_true", help="one batch size, fp32 and bf16 only")
    return parser.parse_args()


def _print_machine(device: torch.device) -> None:
    for line in machine_lines():
        print(f"- {line}")
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        print(f"- gpu: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
              f"cuDNN {torch.backends.cudnn.version()}")


# Part 1 ----------------------------------------------------------------------


def agreement_rows(device: torch.device, reference: Path) -> list[list[object]]:
    rows = []
    for name, net, binary, global_input, layers in _check_cases(reference):
        expected = pool_positions(net, binary, global_input, layers, parse_pooling("mean"), 64)
        moved = net if device.type == "cpu" else _copy_to(net, device)
        for label, dtype, allow_tf32 in _precision_cases(device):
            with _tf32_convolutions(allow_tf32):
                result = pool_positions(moved, binary, global_input, layers, parse_pooling("mean"), 64, autocast_dtype=dtype)
            relative, absolute = _worst_difference(expected, result)
            rows.append([name, f"{binary.shape[0]} at {binary.shape[2]}x{binary.shape[3]}", label, f"{relative:.2e}", f"{absolute:.2e}"])
    return rows


def _check_cases(reference: Path) -> Iterator[tuple[str, KataGoNet, np.ndarray, np.ndarray, list[str]]]:
    models = sorted((reference / "models").glob("ref-*.bin.gz"))
    if not models:
        print(f"(no reference models in {reference}; using random networks and positions)\n")
        yield from _random_cases()
        return
    for path in models:
        net = load_model(path)
        if net.metadata_encoder is not None:
            continue  # kgzarr's chunk tasks pass no SGF metadata, so nets that need it are not extracted
        layers = [name for name in ("trunk_after_embedding", "rconv1.out", "trunkfinal") if name in net.layer_names()]
        for board in ("s7", "s19"):
            data = reference / "activations" / f"{path.name.removesuffix('.bin.gz')}__{board}.npz"
            if data.is_file():
                with np.load(data) as archive:
                    binary, global_input = archive["input.bin"].astype(np.float32), archive["input.global"].astype(np.float32)
                yield path.name.removesuffix(".bin.gz"), net, binary, global_input, layers


def _random_cases() -> Iterator[tuple[str, KataGoNet, np.ndarray, np.ndarray, list[str]]]:
    shapes = {
        "random b4c32": {"num_blocks": 4, "trunk_channels": 32, "mid_channels": 32, "gpool_channels": 16},
        "random b2c64nbt": {"num_blocks": 2, "trunk_channels": 64, "mid_channels": 32, "gpool_channels": 16, "nested": True},
    }
    for name, shape in shapes.items():
        net = KataGoNet.from_desc(random_model(name, seed=1, **shape))
        for side in (7, 19):
            binary, global_input = _random_positions(net, 64, side)
            yield name, net, binary, global_input, ["rconv1.out", "trunkfinal"]


def _precision_cases(device: torch.device) -> list[tuple[str, torch.dtype | None, bool]]:
    if device.type == "cpu":
        return [("bf16 (CPU autocast)", torch.bfloat16, True), ("fp16 (CPU autocast)", torch.float16, True)]
    return [
        ("fp32, TF32 allowed", None, True),
        ("fp32, TF32 off", None, False),
        ("bf16", torch.bfloat16, True),
        ("fp16", torch.float16, True),
    ]


@contextmanager
def _tf32_convolutions(allowed: bool) -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch versions warn about the legacy TF32 switch
        torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32 = saved


def _worst_difference(expected: dict[str, np.ndarray], result: dict[str, np.ndarray]) -> tuple[float, float]:
    relative = absolute = 0.0
    for layer, values in expected.items():
        difference = float(np.abs(result[layer] - values).max())
        absolute = max(absolute, difference)
        relative = max(relative, difference / max(float(np.abs(values).max()), 1e-12))
    return relative, absolute


# Part 2 ----------------------------------------------------------------------


def throughput_rows(device: torch.device, batch_sizes: list[int], precisions: list[str]) -> list[list[object]]:
    rows = []
    for name, shape in SHAPES.items():
        net = _copy_to(KataGoNet.from_desc(random_model(name, seed=0, **shape)), device)
        layer = f"trunk_after_block{shape['num_blocks'] - 1}"
        for side in (7, 19):
            for precision in precisions:
                for batch_size in batch_sizes:
                    rate, ran = _rows_per_second(net, layer, side, batch_size, PRECISIONS[precision])
                    rows.append([name, f"{side}x{side}", precision, batch_size, ran, f"{rate:.0f}"])
                    print(json.dumps({"network": name, "board": side, "precision": precision, "batch": batch_size, "ran": ran, "rows_per_s": round(rate)}), flush=True)
        del net
        torch.cuda.empty_cache()
    return rows


def _rows_per_second(net: KataGoNet, layer: str, side: int, batch_size: int, dtype: torch.dtype | None) -> tuple[float, int]:
    batches = 4
    binary, global_input = _random_positions(net, batch_size * batches, side)
    halved: list[int] = []
    pool = parse_pooling("mean")

    pool_positions(net, binary[:batch_size], global_input[:batch_size], [layer], pool, batch_size, autocast_dtype=dtype, on_batch_halved=halved.append)
    ran = halved[-1] if halved else batch_size
    torch.cuda.synchronize()
    started = time.perf_counter()
    pool_positions(net, binary, global_input, [layer], pool, ran, autocast_dtype=dtype)
    torch.cuda.synchronize()
    return binary.shape[0] / (time.perf_counter() - started), ran


def _random_positions(net: KataGoNet, rows: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(side)
    binary = np.zeros((rows, net.num_input_channels, side, side), dtype=np.float32)
    binary[:, 0] = 1.0
    stones = rng.random((rows, side, side))
    binary[:, 1] = stones < 0.25
    binary[:, 2] = stones > 0.75
    global_input = np.zeros((rows, 19), dtype=np.float32)
    return binary, global_input


def _copy_to(net: KataGoNet, device: torch.device) -> KataGoNet:
    import copy

    return copy.deepcopy(net).to(device)


if __name__ == "__main__":
    sys.exit(main())
