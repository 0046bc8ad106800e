"""SIGKILL an extract at random points; the same command run again gives the results of a clean run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import LAYER, CliResult, snapshot, valid_arrays, write_npz

from kgzarr.data.ingest import ingest
from kgzarr.data.lock import process_alive
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

RESULT_FILES = ("pooled_rconv1.out.npy", "pos_index.csv", "pos_index_to_npz.txt", "pooled_meta.json")

# Keys of pooled_meta.json that record when and how fast a run went, or
# whether its rows were computed or reused, rather than what it produced.
VOLATILE_META = {"date", "created", "elapsed_seconds", "rows_per_second", "forward_rows", "reused_rows"}

KILL_SEEDS = range(4)


@dataclass(frozen=True)
class Reference:
    """An untouched store, the network, and the outputs and phases of one uninterrupted extract."""

    pristine: Path
    model: Path
    outputs: Path
    forward_seconds: float  # from taking the store lock to the first staged output file
    output_seconds: float  # from then until pooled_meta.json is in place


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """A store of 3000 rows in 24 chunks, a 4-block network and the outputs of one uninterrupted extract."""
    root = tmp_path_factory.mktemp("kill")
    for index in range(6):
        write_npz(root / "selfplay" / "tdata" / f"{index}.npz", valid_arrays(500, seed=index))
    pristine = root / "pristine.zarr"
    ingest(root / "selfplay", str(pristine), chunk_rows=128)
    model = root / "net.bin.gz"
    write_model(random_model("net", num_blocks=4, trunk_channels=32, mid_channels=32, gpool_channels=8, seed=1), model)

    store = root / "reference.zarr"
    shutil.copytree(pristine, store)
    code, stderr, phases = _run_watched(store, model, root / "reference", reference=None)
    assert code == 0, stderr
    return Reference(pristine, model, root / "reference", phases["staged"] - phases["locked"], phases["done"] - phases["staged"])


def _command(store: Path, model: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "kgzarr", "extract", "--store", str(store), "--model", str(model),
        "--layer", LAYER, "--out", str(out), "--scheduler", "sync", "--quiet",
    ]


def _run_watched(
    store: Path, model: Path, out: Path, *, reference: Path | None, kill_at: tuple[str, float] | None = None
) -> tuple[int, str, dict[str, float]]:
    """Run an extract in a subprocess and check its output folder every few milliseconds.

    ``kill_at`` is (phase, seconds): SIGKILL the process that many seconds
    after the phase began. Phases: ``locked`` (the store lock file exists),
    ``staged`` (the staging folder holds a file) and ``done`` (pooled_meta.json
    is in place). Returns the exit status, stderr and the time each phase was
    first seen.
    """
    process = subprocess.Popen(_command(store, model, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[str, float] = {}
    while process.poll() is None:
        now = time.monotonic()
        if "locked" not in seen and Path(f"{store}.lock").exists():
            seen["locked"] = now
        if "staged" not in seen and any(out.glob(".kgzarr-staging-*/*")):
            seen["staged"] = now
        if "done" not in seen and (out / "pooled_meta.json").exists():
            seen["done"] = now
        if reference is not None:
            assert_visible_outputs_complete(out, reference)
        if kill_at is not None and kill_at[0] in seen and now - seen[kill_at[0]] >= kill_at[1]:
            process.kill()
            break
        time.sleep(0.001)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr.decode(), seen


def assert_visible_outputs_complete(out: Path, reference: Path) -> None:
    """Assert that every result file present under its final name is whole; the meta appears last."""
    present = [name for name in RESULT_FILES if (out / name).exists()]
    for name in present:
        if name == "pooled_meta.json":
            assert set(present) == set(RESULT_FILES), present
            assert _stable_meta(out) == _stable_meta(reference)
        else:
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def _stable_meta(folder: Path) -> dict:
    meta = json.loads((folder / "pooled_meta.json").read_text(encoding="utf-8"))
    meta["store"].pop("location")
    return {key: value for key, value in meta.items() if key not in VOLATILE_META}


@pytest.mark.slow
@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_sigkill_then_rerun(reference: Reference, tmp_path: Path, seed: int, cli: Callable[..., CliResult]) -> None:
    """Pins a killed extract leaving a truncated .npy, or a store whose cached chunks a re-run trusts wrongly."""
    store = tmp_path / "store.zarr"
    shutil.copytree(reference.pristine, store)
    out = tmp_path / "out"
    # Even seeds kill during the forward pass, odd ones while the outputs are written and moved into place.
    fraction = float(np.random.default_rng(seed).uniform(0.0, 1.0))
    kill_at = ("locked", fraction * reference.forward_seconds) if seed % 2 == 0 else ("staged", fraction * reference.output_seconds)

    _run_watched(store, reference.model, out, reference=reference.outputs, kill_at=kill_at)
    assert_visible_outputs_complete(out, reference.outputs)

    # The same command again. When the killed run got as far as moving its
    # results into place, the re-run finishes that move and then rejects
    # replacing the now complete results.
    rerun = cli(*_command(store, reference.model, out)[3:])
    finished_before = rerun.code == 2 and "already contains" in rerun.stderr
    assert rerun.code == 0 or finished_before, rerun.stderr
    for name in RESULT_FILES[:3]:
        assert (out / name).read_bytes() == (reference.outputs / name).read_bytes(), name
    assert _stable_meta(out) == _stable_meta(reference.outputs)
    assert sorted(path.name for path in out.iterdir()) == sorted(RESULT_FILES)
    assert snapshot(store, skip="activations") == snapshot(reference.pristine, skip="activations")


def _dead_pid() -> int:
    """Return a pid that no process on this host has."""
    pid = 999_999
    while process_alive(pid):
        pid -= 1
    return pid


def test_interrupted_commit_finished(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """Pins an extract killed between moving its .npy and its meta, which left new data beside the old meta."""
    write_npz(tmp_path / "selfplay" / "a.npz", valid_arrays(20))
    store = tmp_path / "s.zarr"
    ingest(tmp_path / "selfplay", str(store))
    model = tmp_path / "net.bin.gz"
    write_model(random_model("net", num_blocks=1, trunk_channels=8, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"]), model)
    out = tmp_path / "out"
    assert cli(*_command(store, model, out)[3:]).code == 0
    expected = snapshot(out)

    staging = out / f".kgzarr-staging-{_dead_pid()}"
    staging.mkdir()
    for name in RESULT_FILES[1:]:
        (out / name).rename(staging / name)
    (staging / "COMMIT").write_text(json.dumps(list(RESULT_FILES)), encoding="utf-8")

    result = cli(*_command(store, model, out)[3:])
    assert result.code == 2
    assert "finished moving the results of an interrupted extract" in result.stderr
    assert snapshot(out) == expected


def test_unfinished_staging_deleted(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """Pins half-written files of a killed extract piling up in the output folder."""
    write_npz(tmp_path / "selfplay" / "a.npz", valid_arrays(20))
    store = tmp_path / "s.zarr"
    ingest(tmp_path / "selfplay", str(store))
    model = tmp_path / "net.bin.gz"
    write_model(random_model("net", num_blocks=1, trunk_channels=8, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"]), model)
    out = tmp_path / "out"
    staging = out / f".kgzarr-staging-{_dead_pid()}"
    staging.mkdir(parents=True)
    (staging / RESULT_FILES[0]).write_bytes(b"\x93NUMPY half")

    assert cli(*_command(store, model, out)[3:]).code == 0
    assert sorted(path.name for path in out.iterdir()) == sorted(RESULT_FILES)
