"""extract() with the positions store behind fsspec URLs: memory:// in this process, file:// across processes."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest

import kgzarr
from kgzarr.extraction.run import extract

pytestmark = pytest.mark.shared

LAYER = "rconv1.out"
NPY = "pooled_rconv1.out.npy"


@pytest.fixture
def local_result(shared_data: Path, tiny_model: Path, tmp_path: Path) -> np.ndarray:
    store = tmp_path / "local.zarr"
    kgzarr.ingest(shared_data / "selfplay_mixed", str(store), chunk_rows=256)
    extract(store=str(store), model=tiny_model, layers=[LAYER], out=tmp_path / "local", device="cpu", scheduler="sync")
    return np.load(tmp_path / "local" / NPY)


def test_memory_url_store(shared_data: Path, tiny_model: Path, tmp_path: Path, local_result: np.ndarray) -> None:
    url = f"memory://kgzarr-{uuid.uuid4().hex}/positions.zarr"
    kgzarr.ingest(shared_data / "selfplay_mixed", url, chunk_rows=256)
    try:
        report = extract(store=url, model=tiny_model, layers=[LAYER], out=tmp_path / "out", device="cpu", scheduler="threads")

        np.testing.assert_array_equal(np.load(tmp_path / "out" / NPY), local_result)
        assert report.store == url
        assert {path.name for path in (tmp_path / "out").iterdir()} >= {NPY, "pooled_meta.json", "pos_index.csv"}
        raw = kgzarr.open_activations(url)
        assert raw.shape == (1237, 8)
        assert fsspec.filesystem("memory").exists(f"{url.removeprefix('memory://')}/activations")
    finally:
        fsspec.filesystem("memory").rm(url.removeprefix("memory://").split("/")[0], recursive=True)


def test_file_url_store_processes(shared_data: Path, tiny_model: Path, tmp_path: Path, local_result: np.ndarray) -> None:
    """Pins that worker processes open the store from the URL carried by each task."""
    url = (tmp_path / "remote.zarr").as_uri()
    kgzarr.ingest(shared_data / "selfplay_mixed", url, chunk_rows=256)

    extract(store=url, model=tiny_model, layers=[LAYER], out=tmp_path / "out", device="cpu", scheduler="processes", chunk_rows=400)

    np.testing.assert_allclose(np.load(tmp_path / "out" / NPY), local_result, rtol=1e-6, atol=1e-7)
    assert (tmp_path / "remote.zarr" / "activations").is_dir()
