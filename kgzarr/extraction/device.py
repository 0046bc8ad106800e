"""Choose the torch device and the floating-point precision of the forward pass."""

from __future__ import annotations

import contextlib
import re
from contextlib import AbstractContextManager

import torch

from kgzarr.errors import ConfigError, DeviceUnavailableError

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision", "autocast"]

# Precision name -> torch dtype of the network's weights and inputs.
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

_DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(device: str | torch.device) -> str:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a device string that exists here.

    ``auto`` picks ``cuda`` when torch sees a GPU and ``cpu`` otherwise.
    """
    text = str(device)
    if _DEVICE_PATTERN.fullmatch(text) is None:
        raise ConfigError(f"invalid device {text!r}; use auto, cpu, cuda or cuda:N")

    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return text

    if not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {text!r} requested, but torch sees no CUDA GPU here; use --device cpu")
    index = int(text.split(":")[1]) if ":" in text else 0
    if index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device {text!r} requested, but torch sees only {torch.cuda.device_count()} CUDA GPUs; "
            f"use cuda:0..cuda:{torch.cuda.device_count() - 1} or --device cpu"
        )
    return text


def resolve_precision(precision: str, device: str) -> torch.dtype:
    """Return the dtype for ``fp32``, ``bf16`` or ``fp16``; reduced precision needs a GPU."""
    if precision not in PRECISIONS:
        raise ConfigError(f"invalid precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and not device.startswith("cuda"):
        raise ConfigError(
            f"precision {precision} runs only on a CUDA GPU, but the device is {device}; "
            "use --precision fp32 or --device cuda"
        )
    return PRECISIONS[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    """Return ``torch.autocast`` to ``dtype`` on ``device``, or a context that changes nothing for ``None``.

    Under autocast, convolutions and matrix products run in ``dtype``;
    PyTorch's autocast op lists decide which other ops do.
    """
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
