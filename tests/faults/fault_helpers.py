"""Helpers of the fault tests: valid self-play arrays, store snapshots and the CLI result type."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LAYER = "rconv1.out"


def valid_arrays(num_rows: int, side: int = 7, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Return valid KataGo training arrays of ``num_rows`` full-board rows."""
    rng = np.random.default_rng(seed)
    planes = rng.integers(0, 2, size=(num_rows, 22, side * side), dtype=np.uint8)
    planes[:, 0] = 1
    points = side * side + 1
    return {
        "binaryInputNCHWPacked": np.packbits(planes, axis=-1),
        "globalInputNC": rng.standard_normal((num_rows, 19)).astype(np.float32),
        "policyTargetsNCMove": rng.integers(0, 100, (num_rows, 2, points)).astype(np.int16),
        "globalTargetsNC": rng.standard_normal((num_rows, 80)).astype(np.float32),
        "scoreDistrN": rng.integers(0, 100, (num_rows, 218)).astype(np.int8),
        "valueTargetsNCHW": rng.integers(-1, 2, (num_rows, 5, side, side)).astype(np.int8),
        "qValueTargetsNCMove": rng.integers(-100, 100, (num_rows, 3, points)).astype(np.int16),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays as a compressed npz, the way KataGo's self-play writer does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def snapshot(folder: Path, *, skip: str | None = None) -> dict[str, str]:
    """Return relative path -> SHA-256 of every file under ``folder`` (none when it is absent).

    ``skip`` leaves out one top-level subfolder, such as the ``activations``
    cache of raw pooled values inside a store.
    """
    if not folder.exists():
        return {}
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not (skip and relative.startswith(f"{skip}/")):
            files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@dataclass(frozen=True)
class CliResult:
    """Exit status and the lines the command printed on stderr."""

    code: int
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("kgzarr: error:")]
