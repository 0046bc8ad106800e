"""extract() with a small random network: invariance, reuse, resume, errors and reading back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from distributed import Client, LocalCluster

import kgzarr
from kgzarr.errors import (
    ConfigError,
    ConstantColumnError,
    DeviceUnavailableError,
    LayerNotFoundError,
    OutputExistsError,
)
from kgzarr.extraction.run import extract
from kgzarr.extraction.worker import forward_rows
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

pytestmark = pytest.mark.shared

LAYER = "rconv1.out"


def _run(store: str, model: Path, out: Path, **options: object) -> np.ndarray:
    extract(store=store, model=model, layers=[LAYER], out=out, device="cpu", **options)
    return np.load(out / "pooled_rconv1.out.npy")


def test_same_output_any_chunking(mixed_store: str, tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    expected = _run(mixed_store, tiny_model, tmp_path / "sync", scheduler="sync", batch_size=512)

    for index, (chunk_rows, batch_size, scheduler) in enumerate([(300, 7, "threads"), (1000, 64, "processes")]):
        store = str(tmp_path / f"store{index}.zarr")
        kgzarr.ingest(shared_data / "selfplay_mixed", store, chunk_rows=256)
        result = _run(store, tiny_model, tmp_path / f"out{index}", scheduler=scheduler, batch_size=batch_size, chunk_rows=chunk_rows)
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-7, err_msg=f"{scheduler} chunk {chunk_rows}")


def test_same_output_distributed(mixed_store: str, tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    expected = _run(mixed_store, tiny_model, tmp_path / "sync", scheduler="sync")
    store = str(tmp_path / "other.zarr")
    kgzarr.ingest(shared_data / "selfplay_mixed", store, chunk_rows=256)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        report = extract(store=store, model=tiny_model, layers=[LAYER], out=tmp_path / "dist", scheduler=client, chunk_rows=400)

    result = np.load(tmp_path / "dist" / "pooled_rconv1.out.npy")
    assert report.forward_rows == 1237
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-7)


def test_resume_computes_missing_chunks(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    """Pins resuming an interrupted extract: only chunks without their done flag run again."""
    expected = _run(mixed_store, tiny_model, tmp_path / "first", scheduler="sync")
    meta = json.loads((tmp_path / "first" / "pooled_meta.json").read_text(encoding="utf-8"))
    raw_path = meta["layers"]["rconv1.out"]["raw_values"]
    flags = zarr.open_array(mixed_store, path=f"{raw_path}/chunk_done", mode="r+")
    values = zarr.open_array(mixed_store, path=f"{raw_path}/values", mode="r+")
    flags[1] = 0
    flags[4] = 0
    values[256:512] = 0
    values[1024:1237] = 0

    before = forward_rows()
    report = extract(store=mixed_store, model=tiny_model, layers=[LAYER], out=tmp_path / "second", scheduler="threads")

    assert report.forward_rows == 256 + 213
    assert forward_rows() - before == 256 + 213
    np.testing.assert_allclose(np.load(tmp_path / "second" / "pooled_rconv1.out.npy"), expected, rtol=1e-6)


def test_two_layers_one_pass(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    before = forward_rows()

    report = extract(
        store=mixed_store, model=tiny_model, layers=["rconv1.out", "trunk_block_1_output"], out=tmp_path, scheduler="sync"
    )

    assert forward_rows() - before == 1237
    assert (tmp_path / "pooled_rconv1.out.npy").is_file()
    assert np.load(tmp_path / "pooled_trunk_block_1.npy").shape == (1237, 8)
    assert report.columns == {"rconv1.out": 8, "trunk_block_1_output": 8}


def test_split_doubles_columns(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    raw = _run(mixed_store, tiny_model, tmp_path / "raw", nonneg="none", scale="none")

    split = _run(mixed_store, tiny_model, tmp_path / "split", nonneg="split", scale="none")

    assert split.shape == (1237, 16)
    np.testing.assert_array_equal(split[:, :8], np.maximum(raw, 0))
    np.testing.assert_array_equal(split[:, 8:], np.maximum(-raw, 0))
    opened = kgzarr.open_activations(tmp_path / "split")
    assert opened.coords["sign"].values.tolist() == ["+"] * 8 + ["-"] * 8


def test_open_activations_folder(mixed_store: str, tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    matrix = _run(mixed_store, tiny_model, tmp_path)

    opened = kgzarr.open_activations(tmp_path)

    assert opened.dims == ("position", "channel")
    np.testing.assert_array_equal(opened.values, matrix)
    first_file = str(opened.coords["source_file"].values[0])
    with np.load(first_file) as archive:
        assert archive["globalInputNC"].shape[0] > int(opened.coords["source_row"].values[0])
    assert first_file.startswith(str(shared_data / "selfplay_mixed"))
    assert set(np.unique(opened.coords["board_x"].values)) == {5, 6, 7}
    assert opened.attrs["canonical_layer"] == "rconv1.out"


def test_open_activations_store(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    _run(mixed_store, tiny_model, tmp_path, nonneg="none", scale="none")

    opened = kgzarr.open_activations(mixed_store)

    np.testing.assert_array_equal(opened.values, np.load(tmp_path / "pooled_rconv1.out.npy"))
    assert opened.attrs["pooling"] == "mean"


def test_pooled_activations_lazy(mixed_store: str, tiny_model: Path) -> None:
    before = forward_rows()

    array = kgzarr.pooled_activations(mixed_store, tiny_model, LAYER, pooling="mean-max", batch_size=100)

    assert forward_rows() == before
    values = array.compute(scheduler="sync")
    assert forward_rows() - before == 1237
    assert values.shape == (1237, 16)
    assert values.coords["pooled_by"].values[8] == "max"
    assert bool(np.all(values.values[:, 8:] >= values.values[:, :8] - 1e-6))


def test_existing_outputs_rejected(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    _run(mixed_store, tiny_model, tmp_path)

    with pytest.raises(OutputExistsError, match="pooled_rconv1.out.npy") as caught:
        _run(mixed_store, tiny_model, tmp_path)

    assert "--overwrite" in str(caught.value)
    _run(mixed_store, tiny_model, tmp_path, overwrite=True)


def test_strict_zero_column(mixed_store: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Pins the step-3 script's refusal of an all-zero column, kept under --strict."""
    desc = random_model("zeroed", num_blocks=1, trunk_channels=8, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"], seed=2)
    desc.trunk.blocks[0].final_conv.weight[3] = 0.0
    model = tmp_path / "zeroed.bin.gz"
    write_model(desc, model)

    with pytest.raises(ConstantColumnError, match="columns 3"):
        extract(store=mixed_store, model=model, layers=[LAYER], out=tmp_path / "strict", nonneg="clip", strict=True)

    report = extract(store=mixed_store, model=model, layers=[LAYER], out=tmp_path / "lenient", nonneg="clip")
    meta = json.loads((tmp_path / "lenient" / "pooled_meta.json").read_text(encoding="utf-8"))
    assert report.constant_columns[LAYER] == (3,)
    assert meta["layers"]["rconv1.out"]["constant_columns"] == [3]
    assert bool(np.all(np.load(tmp_path / "lenient" / "pooled_rconv1.out.npy")[:, 3] == 0))
    assert "stay zero" in caplog.text


def test_option_errors(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="precision bf16"):
        extract(store=mixed_store, model=tiny_model, layers=[LAYER], out=tmp_path, device="cpu", precision="bf16")
    with pytest.raises(ConfigError, match="invalid pooling"):
        extract(store=mixed_store, model=tiny_model, layers=[LAYER], out=tmp_path, pooling="median")
    with pytest.raises(ConfigError, match="grid:6 needs boards"):
        extract(store=mixed_store, model=tiny_model, layers=[LAYER], out=tmp_path, pooling="grid:6")
    with pytest.raises(LayerNotFoundError):
        extract(store=mixed_store, model=tiny_model, layers=["rconv9.out"], out=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_unavailable(mixed_store: str, tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="--device cpu"):
        extract(store=mixed_store, model=tiny_model, layers=[LAYER], out=tmp_path, device="cuda")
