"""One test per row of docs/errors.md: the message printed, the exit status, and nothing written.

Each test runs the real command line in this process (``kgzarr.cli.main``).
It checks that exactly one ``kgzarr: error:`` line was printed, with the
documented text. It also checks that the store (all its files, by SHA-256)
and the output folder are as they were before.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from fault_helpers import LAYER, CliResult, snapshot, valid_arrays, write_npz

from kgzarr.data.lock import StoreLock
from kgzarr.extraction import outputs
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

Cli = Callable[..., CliResult]

RESULT_FILES = ["pooled_meta.json", "pooled_rconv1.out.npy", "pos_index.csv", "pos_index_to_npz.txt"]


def assert_one_error(result: CliResult, code: int, *fragments: str) -> None:
    """Assert the exit status and one error line containing every fragment, with no traceback."""
    assert result.code == code, result.stderr
    assert len(result.errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.errors[0], result.errors[0]


# ------------------------------------------------------------------ positions input (ingest)


def ingest_error(cli: Cli, inputs: Path, store: Path, *extra: str) -> CliResult:
    """Run a failing ingest and assert that the store and its lock file are as before."""
    before = snapshot(store)
    result = cli("ingest", inputs, "--store", store, *extra)
    assert snapshot(store) == before
    assert not Path(f"{store}.lock").exists()
    return result


def test_folder_missing(cli: Cli, tmp_path: Path) -> None:
    """Pins a typo in the positions path."""
    result = ingest_error(cli, tmp_path / "nope", tmp_path / "s.zarr")
    assert_one_error(result, 2, "nope: positions folder or file not found; check the path")


def test_folder_empty(cli: Cli, tmp_path: Path) -> None:
    """Pins pointing ingest at a self-play folder that has no tdata yet."""
    (tmp_path / "empty").mkdir()
    result = ingest_error(cli, tmp_path / "empty", tmp_path / "s.zarr")
    assert_one_error(result, 2, "no *.npz, *.sgf or *.sgfs files found")


def test_folder_unreadable(cli: Cli, positions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins os.walk silently skipping a subfolder it may not list, which dropped its files from the store."""
    real_scandir = os.scandir
    blocked = str(positions / "tdata")

    def scandir(path: str | os.PathLike[str] = ".") -> os.ScandirIterator:  # type: ignore[type-arg]
        if os.fspath(path) == blocked:
            raise PermissionError(errno.EACCES, "Permission denied", blocked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = ingest_error(cli, positions, tmp_path / "s.zarr")
    assert_one_error(result, 2, f"{blocked}: positions folder cannot be read (Permission denied); check its permissions")


def test_file_unreadable(cli: Cli, positions: Path, tmp_path: Path) -> None:
    """Pins a dangling symlink in a self-play folder ending ingest with a bare OSError."""
    link = positions / "tdata" / "c.npz"
    link.symlink_to(tmp_path / "gone.npz")
    result = ingest_error(cli, positions, tmp_path / "s.zarr")
    assert_one_error(
        result, 2, f"{link}: cannot be read (No such file or directory); check that it exists", "nothing from this run was committed"
    )


def bad_npz(folder: Path, name: str = "bad.npz", **changes: np.ndarray | None) -> Path:
    """Write valid arrays of 5 rows with some replaced (or, given None, removed)."""
    arrays = valid_arrays(5, seed=3)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return write_npz(folder / "tdata" / name, arrays)


def test_npz_not_zip(cli: Cli, tmp_path: Path) -> None:
    """Pins a stray text file named .npz aborting ingest with zipfile.BadZipFile."""
    path = tmp_path / "in" / "x.npz"
    path.parent.mkdir()
    path.write_text("not an archive")
    result = ingest_error(cli, path.parent, tmp_path / "s.zarr")
    assert_one_error(result, 2, f"{path}: not a zip archive, so not a KataGo .npz training file", "--skip-bad")


def test_npz_truncated(cli: Cli, tmp_path: Path) -> None:
    """Pins a half-copied .npz reported as 'not a zip archive' instead of as truncated."""
    path = bad_npz(tmp_path / "in")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = ingest_error(cli, tmp_path / "in", tmp_path / "s.zarr")
    assert_one_error(result, 2, f"{path}: the zip archive is truncated or damaged", "copy the file again")


def test_npz_member_short(cli: Cli, tmp_path: Path) -> None:
    """Pins a .npy member whose header promises more rows than it holds."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (1000, 19)})
    path = tmp_path / "in" / "x.npz"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("globalInputNC.npy", buffer.getvalue() + b"\0" * 40)
    result = ingest_error(cli, path.parent, tmp_path / "s.zarr")
    assert_one_error(result, 2, "a member of the npz archive is damaged or not a valid .npy array", "declares shape (1000, 19)")


def test_npz_zero_rows(cli: Cli, tmp_path: Path) -> None:
    """Pins an empty self-play file, written when a run stopped before its first game ended."""
    write_npz(tmp_path / "in" / "x.npz", valid_arrays(0))
    result = ingest_error(cli, tmp_path / "in", tmp_path / "s.zarr")
    assert_one_error(result, 2, "x.npz: the file has zero rows; remove it or use --skip-bad")


def test_npz_missing_array(cli: Cli, tmp_path: Path) -> None:
    """Pins a KeyError from a file that lacks globalInputNC."""
    bad_npz(tmp_path / "in", globalInputNC=None)
    result = ingest_error(cli, tmp_path / "in", tmp_path / "s.zarr")
    assert_one_error(result, 2, "missing required array globalInputNC (found: binaryInputNCHWPacked")


def test_npz_wrong_dtype(cli: Cli, tmp_path: Path) -> None:
    """Pins float64 globals written by a Python re-implementation of the writer."""
    bad_npz(tmp_path / "in", globalInputNC=valid_arrays(5)["globalInputNC"].astype(np.float64))
    result = ingest_error(cli, tmp_path / "in", tmp_path / "s.zarr")
    assert_one_error(result, 2, "array globalInputNC has dtype float64, expected float32")


def test_npz_row_counts(cli: Cli, tmp_path: Path) -> None:
    """Pins arrays of different lengths in one file, which misaligned positions and targets."""
    bad_npz(tmp_path / "in", globalInputNC=valid_arrays(3)["globalInputNC"])
    result = ingest_error(cli, tmp_path / "in", tmp_path / "s.zarr")
    assert_one_error(result, 2, "arrays have different row counts (binaryInputNCHWPacked=5, globalInputNC=3")


def test_npz_size_vs_store(cli: Cli, store: Path, tmp_path: Path) -> None:
    """Pins a 9x9 file added to a 7x7 store, whose error blamed a --board-size that was never given."""
    write_npz(tmp_path / "nine" / "x.npz", valid_arrays(4, side=9))
    result = ingest_error(cli, tmp_path / "nine", store)
    assert_one_error(result, 2, "so the tensor is 9x9, but the store contains 7x7 tensors")


def test_npz_size_vs_flag(cli: Cli, positions: Path, tmp_path: Path) -> None:
    """Pins 7x7 files ingested with --board-size 9."""
    result = ingest_error(cli, positions, tmp_path / "s.zarr", "--board-size", "9")
    assert_one_error(result, 2, "so the tensor is 7x7, but --board-size 9 was given", "(1 more files are invalid too)")


def test_npz_channels_vs_store(cli: Cli, store: Path, tmp_path: Path) -> None:
    """Pins a file from an older KataGo (64 global targets) added to a store of 80."""
    bad_npz(tmp_path / "old", globalTargetsNC=valid_arrays(5)["globalTargetsNC"][:, :64])
    result = ingest_error(cli, tmp_path / "old", store)
    assert_one_error(result, 2, "array globalTargetsNC has rows of shape (64,), the store's are (80,)")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_npz_nonfinite_globals(cli: Cli, tmp_path: Path, value: float) -> None:
    """Pins NaN or inf in globalInputNC reaching the network."""
    globals_ = valid_arrays(5)["globalInputNC"]
    globals_[2, 4] = value
    bad_npz(tmp_path / "in", globalInputNC=globals_)
    result = ingest_error(cli, tmp_path / "in", tmp_path / "s.zarr")
    assert_one_error(result, 2, f"globalInputNC row 2, global feature 4 is {value}", "nothing from this run was committed")


# ------------------------------------------------------------------ model files


def model_error(cli: Cli, path: Path) -> CliResult:
    """Run ``kgzarr layers`` on a bad model file and assert the folder around it is unchanged."""
    before = snapshot(path.parent)
    result = cli("layers", "--model", path)
    assert snapshot(path.parent) == before
    return result


def edited_model(tiny_net: Path, folder: Path, old: bytes, new: bytes) -> Path:
    """Write a copy of the tiny network with one byte string of its uncompressed content replaced."""
    content = gzip.decompress(tiny_net.read_bytes())
    assert old in content
    path = folder / "edited.bin.gz"
    path.write_bytes(gzip.compress(content.replace(old, new, 1)))
    return path


def test_model_missing(cli: Cli, tmp_path: Path) -> None:
    """Pins a wrong --model path."""
    result = model_error(cli, tmp_path / "absent.bin.gz")
    assert_one_error(result, 2, f"model file {tmp_path / 'absent.bin.gz'} not found; check the path")


def test_model_empty(cli: Cli, tmp_path: Path) -> None:
    """Pins a download that wrote an empty file."""
    path = tmp_path / "empty.bin.gz"
    path.write_bytes(b"")
    assert_one_error(model_error(cli, path), 2, f"model file {path} is empty; download or export it again")


def test_model_gzip_corrupt(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a network whose gzip checksum fails after a bad copy."""
    raw = bytearray(tiny_net.read_bytes())
    raw[-6] ^= 0xFF  # a byte of the CRC-32 in the gzip trailer
    path = tmp_path / "corrupt.bin.gz"
    path.write_bytes(bytes(raw))
    result = model_error(cli, path)
    assert_one_error(result, 2, "starts like gzip but cannot be decompressed (CRC check failed)")


@pytest.mark.parametrize("cut", ["gzip-third", "header", "weights-half", "weights-end"])
def test_model_truncated(cli: Cli, tiny_net: Path, tmp_path: Path, cut: str) -> None:
    """Pins interrupted downloads, cut in the gzip stream, in the header or in the weights."""
    raw = tiny_net.read_bytes()
    content = gzip.decompress(raw)
    cuts = {"header": 10, "weights-half": len(content) // 2, "weights-end": len(content) - 3}
    path = tmp_path / f"{cut}.bin.gz"
    path.write_bytes(raw[: len(raw) // 3] if cut == "gzip-third" else gzip.compress(content[: cuts[cut]]))
    result = model_error(cli, path)
    assert_one_error(result, 2, "the file is truncated", path.name)


def test_model_wrong_magic(cli: Cli, positions: Path) -> None:
    """Pins a training .npz passed as --model."""
    result = model_error(cli, positions / "tdata" / "a.npz")
    assert_one_error(result, 2, "expected the model name, found non-ASCII bytes", "not a KataGo model file")


def test_model_newer_version(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a network from a KataGo release newer than kgzarr."""
    path = edited_model(tiny_net, tmp_path, b"tiny\n15\n", b"tiny\n99\n")
    result = model_error(cli, path)
    assert_one_error(result, 2, "model version is 99, kgzarr reads versions 8 to 17", "this network needs a newer kgzarr")


def test_model_unknown_block(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a block kind kgzarr does not implement."""
    path = edited_model(tiny_net, tmp_path, b"ordinary_block", b"fancy_block")
    assert_one_error(model_error(cli, path), 2, "trunk block 0: unknown block kind 'fancy_block', expected one of ordinary_block")


def test_model_unknown_activation(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins an activation kgzarr does not implement."""
    path = edited_model(tiny_net, tmp_path, b"ACTIVATION_RELU", b"ACTIVATION_TANH")
    assert_one_error(model_error(cli, path), 2, "unknown activation 'ACTIVATION_TANH', expected one of")


def test_model_count_mismatch(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a header whose channel count disagrees with the trunk's, which misread every later weight."""
    path = edited_model(tiny_net, tmp_path, b"model.conv_spatial\n3\n3\n22\n8\n", b"model.conv_spatial\n3\n3\n22\n9\n")
    assert_one_error(model_error(cli, path), 2, "model.conv_spatial: out_channels is 9 but trunk channels is 8; they must be equal")


def test_model_block_count_mismatch(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a header announcing more trunk blocks than the file holds."""
    path = edited_model(tiny_net, tmp_path, b"trunk\n2\n8", b"trunk\n3\n8")
    assert_one_error(model_error(cli, path), 2, "trunk block 2: unknown block kind 'model.norm_trunkfinal'")


# ------------------------------------------------------------------ extract inputs


def extract_error(cli: Cli, store: Path, model: Path, out: Path, *extra: str | Path, skip: str | None = None) -> CliResult:
    """Run a failing extract and assert the store is unchanged and no result appeared in ``out``.

    ``skip="activations"`` leaves the store's cache of raw pooled values out of
    the comparison, for failures during the forward pass.
    """
    before = snapshot(store, skip=skip)
    existing = snapshot(out)
    result = cli("extract", "--store", store, "--model", model, "--out", out, *extra)
    assert snapshot(store, skip=skip) == before
    assert snapshot(out) == existing
    assert not Path(f"{store}.lock").exists()
    return result


def test_layer_unknown(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a layer name from a deeper network, reported with the nearest valid names."""
    result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer", "rconv9.out")
    assert_one_error(result, 2, "layer 'rconv9.out' not found in network tiny", "nearest valid names: rconv2.out, rconv1.out")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "not found; pass --layer NAME or --layer-selection FILE"),
        ("layer_shape: 8×7×7\n", "key 'chosen_layer' is missing or not a layer name (found None)"),
        ("chosen_layer: [\n", "is not valid YAML (expected the node content, but found '<stream end>' at line 2, column 1)"),
        ("chosen_layer: rconv1.out\nlayer_shape: big\n", "key 'layer_shape' must read like '512×7×7'"),
        ("- rconv1.out\n", "must be a YAML mapping with key 'chosen_layer', found list"),
    ],
    ids=["missing", "no-key", "malformed", "bad-shape", "list"],
)
def test_layer_selection_bad(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path, content: str | None, fragment: str) -> None:
    """Pins layer_selection.yml files that step 2 left incomplete or that were edited by hand."""
    selection = tmp_path / "layer_selection.yml"
    if content is not None:
        selection.write_text(content, encoding="utf-8")
    result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer-selection", selection)
    assert_one_error(result, 2, str(selection), fragment)


def test_config_malformed(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a YAML parse error spread over several stderr lines."""
    config = tmp_path / "kgzarr.yml"
    config.write_text("extract:\n  out: [\n", encoding="utf-8")
    result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer", LAYER, "--config", config)
    assert_one_error(result, 2, f"config file {config} is not valid YAML (", "at line 3, column 1); fix the file")


def test_store_not_a_store(cli: Cli, positions: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins passing the self-play folder as --store."""
    result = extract_error(cli, positions, tiny_net, tmp_path / "out", "--layer", LAYER)
    assert_one_error(result, 2, f"{positions}: not a Zarr store (no zarr.json); create it with 'kgzarr ingest")


def test_store_foreign_zarr(cli: Cli, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a Zarr group written by another tool passed as --store."""
    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w")
    result = extract_error(cli, other, tiny_net, tmp_path / "out", "--layer", LAYER)
    assert_one_error(result, 2, "a Zarr group but not a kgzarr positions store (no kgzarr_format_version attribute)")


def test_store_folder_not_empty(cli: Cli, positions: Path, tmp_path: Path) -> None:
    """Pins ingest creating a store inside a folder of unrelated files."""
    target = tmp_path / "documents"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = ingest_error(cli, positions, target)
    assert_one_error(result, 2, "the folder exists, is not empty and is not a Zarr store")


def make_newer(store: Path) -> None:
    """Rewrite a store's format version to one this kgzarr does not know."""
    document = json.loads((store / "zarr.json").read_text())
    document["attributes"]["kgzarr_format_version"] = 2
    if document.get("consolidated_metadata") is None:
        raise AssertionError("the store has no consolidated metadata to keep")
    (store / "zarr.json").write_text(json.dumps(document))


@pytest.mark.parametrize("command", ["extract", "ingest", "info"])
def test_store_newer_format(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path, command: str) -> None:
    """Pins an old kgzarr reading or appending to a store written by a newer one."""
    make_newer(store)
    fragment = "store format version 2 is newer than the 1 this kgzarr"
    if command == "extract":
        result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer", LAYER)
    elif command == "ingest":
        result = ingest_error(cli, positions, store)
    else:
        result = cli("info", store)
    assert_one_error(result, 2, fragment, "upgrade kgzarr, or ingest the positions again with --rebuild")


def test_sources_changed(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins an extract whose position index named rows of a file regenerated after ingest."""
    write_npz(positions / "tdata" / "a.npz", valid_arrays(41, seed=9))
    result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer", LAYER)
    assert_one_error(result, 2, "1 source files changed since ingest (tdata/a.npz)", "--replace", "--allow-changed-sources")


def test_sources_same_size_changed(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a rewrite of equal size, caught by the modification time and then the SHA-256."""
    path = positions / "tdata" / "b.npz"
    content = bytearray(path.read_bytes())
    content[-30] ^= 0x01
    path.write_bytes(bytes(content))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer", LAYER)
    assert_one_error(result, 2, "1 source files changed since ingest (tdata/b.npz)")


def test_sources_touched_ok(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a copy that kept the content but not the modification time being taken for a change."""
    path = positions / "tdata" / "b.npz"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = cli("extract", "--store", store, "--model", tiny_net, "--out", tmp_path / "out", "--layer", LAYER)
    assert result.code == 0, result.stderr


def test_sources_allowed(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins --allow-changed-sources extracting the stored rows with a warning."""
    write_npz(positions / "tdata" / "a.npz", valid_arrays(41, seed=9))
    result = cli("extract", "--store", store, "--model", tiny_net, "--out", tmp_path / "out", "--layer", LAYER, "--allow-changed-sources")
    assert result.code == 0, result.stderr
    assert "extracting anyway as asked" in result.stderr


def test_sources_missing_ok(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a self-contained store refused after its source files were archived away."""
    (positions / "tdata" / "a.npz").unlink()
    result = cli("extract", "--store", store, "--model", tiny_net, "--out", tmp_path / "out", "--layer", LAYER)
    assert result.code == 0, result.stderr
    assert "1 source files of" in result.stderr


@pytest.mark.parametrize("command", ["ingest", "extract"])
def test_store_locked(cli: Cli, store: Path, positions: Path, tiny_net: Path, tmp_path: Path, command: str) -> None:
    """Pins a second writer starting while another process has the store locked."""
    with StoreLock(str(store), command="extract"):
        holder = json.loads(Path(f"{store}.lock").read_text())
        before = snapshot(store)
        if command == "ingest":
            result = cli("ingest", positions, "--store", store)
        else:
            result = cli("extract", "--store", store, "--model", tiny_net, "--out", tmp_path / "out", "--layer", LAYER)
        assert snapshot(store) == before
    assert not (tmp_path / "out").exists()
    assert_one_error(result, 1, f"the store is locked by kgzarr extract (process {holder['pid']} on {holder['host']}", "wait for that process")


# ------------------------------------------------------------------ outputs and running


def test_outputs_exist(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins a second extract silently replacing the results of the first."""
    out = tmp_path / "out"
    assert cli("extract", "--store", store, "--model", tiny_net, "--out", out, "--layer", LAYER).code == 0
    result = extract_error(cli, store, tiny_net, out, "--layer", LAYER)
    assert_one_error(result, 2, f"output folder {out} already contains {', '.join(RESULT_FILES)}; pass --overwrite")


def test_out_is_file(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins --out naming a file, found only after the whole forward pass."""
    out = tmp_path / "results.npy"
    out.write_bytes(b"keep")
    result = extract_error(cli, store, tiny_net, out, "--layer", LAYER)
    assert_one_error(result, 2, f"output folder {out} exists but is not a folder; choose another --out")


class _FullDisk:
    """A file object that raises ENOSPC once more than ``limit`` bytes have been written."""

    def __init__(self, handle: io.IOBase, limit: int) -> None:
        self._handle = handle
        self._limit = limit
        self._written = 0

    def write(self, data: bytes | str) -> int:
        self._written += len(data)
        if self._written > self._limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._handle.write(data)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handle.close()


def test_disk_full(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins a full disk during --overwrite leaving a truncated .npy beside the old meta."""
    out = tmp_path / "out"
    assert cli("extract", "--store", store, "--model", tiny_net, "--out", out, "--layer", LAYER, "--pooling", "mean-max").code == 0
    real_open = outputs._open_output
    monkeypatch.setattr(outputs, "_open_output", lambda path, mode, **kwargs: _FullDisk(real_open(path, mode, **kwargs), 1000))
    result = extract_error(cli, store, tiny_net, out, "--layer", LAYER, "--pooling", "mean-max", "--overwrite")
    assert_one_error(
        result,
        1,
        f"writing {out / 'pooled_rconv1.out.npy'} failed: [Errno 28] No space left on device; check free disk space",
        "earlier results in that folder are unchanged",
    )
    assert sorted(path.name for path in out.iterdir()) == RESULT_FILES


def test_network_nan(cli: Cli, store: Path, positions: Path, tmp_path: Path) -> None:
    """Pins NaN activations written into the matrix without naming the position that produced them."""
    desc = random_model("overflow", num_blocks=1, trunk_channels=8, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"])
    desc.trunk.initial_conv.weight[:] = 3e38
    model = tmp_path / "overflow.bin.gz"
    write_model(desc, model)
    result = extract_error(cli, store, model, tmp_path / "out", "--layer", LAYER, skip="activations")
    assert_one_error(result, 1, f"layer {LAYER} is NaN or infinite for position ", "Check the model file")
    named = re.search(r"for position (\d+) \((.+), row (\d+)\)", result.errors[0])
    assert named is not None, result.errors[0]
    position, path, row = int(named[1]), Path(named[2]), int(named[3])
    first_row = {"a.npz": 0, "b.npz": 40}[path.name]
    assert path == positions / "tdata" / path.name
    assert position == first_row + row


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a CUDA GPU")
def test_device_unavailable(cli: Cli, store: Path, tiny_net: Path, tmp_path: Path) -> None:
    """Pins --device cuda on a CPU-only machine failing deep inside torch."""
    result = extract_error(cli, store, tiny_net, tmp_path / "out", "--layer", LAYER, "--device", "cuda")
    assert_one_error(result, 2, "device 'cuda' requested, but torch sees no CUDA GPU here; use --device cpu")
