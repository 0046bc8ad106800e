"""extract() on genuine self-play rows, recomputed row by row from the source .npz files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import kgzarr
from kgzarr.extraction.worker import forward_rows
from kgzarr.model.network import load_model

pytestmark = pytest.mark.shared


def _source_rows(out: Path) -> tuple[list[str], np.ndarray]:
    paths = (out / "pos_index_to_npz.txt").read_text(encoding="utf-8").split("\n")
    with (out / "pos_index.csv").open(encoding="utf-8") as handle:
        rows = np.array([int(record["row_in_file"]) for record in csv.DictReader(handle)])
    return paths, rows


def _recompute(model: Path, layer: str, paths: list[str], rows: np.ndarray, grid: int = 0) -> np.ndarray:
    """Re-read each row from its source file and pool the layer with numpy, independently of kgzarr.extraction."""
    net = load_model(model)
    binary, global_input = [], []
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for path, row in zip(paths, rows):
        if path not in cache:
            with np.load(path) as archive:
                cache[path] = (archive["binaryInputNCHWPacked"], archive["globalInputNC"])
        packed, globals_ = cache[path]
        binary.append(np.unpackbits(packed[row], axis=-1)[:, :49].reshape(22, 7, 7))
        global_input.append(globals_[row])
    binary_array = np.stack(binary).astype(np.float32)

    with torch.inference_mode():
        act = net.capture(torch.from_numpy(binary_array), torch.from_numpy(np.stack(global_input)), [layer])[layer]
    act = act.numpy().astype(np.float64)
    mask = binary_array[:, 0]
    if grid == 0:
        return (act * mask[:, None]).sum(axis=(2, 3)) / mask.sum(axis=(1, 2))[:, None]
    return np.stack([_grid_row(act[n], mask[n], grid) for n in range(len(act))])


def _grid_row(act: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    height, width = int(mask.any(axis=1).sum()), int(mask.any(axis=0).sum())

    def edges(length: int) -> list[tuple[int, int]]:
        step = length // k
        return [(i * step, (i + 1) * step if i < k - 1 else length) for i in range(k)]

    return np.concatenate([act[:, y0:y1, x0:x1].mean(axis=(1, 2)) for y0, y1 in edges(height) for x0, x1 in edges(width)])


def _shift_max(matrix: np.ndarray) -> np.ndarray:
    minimum = matrix.min(axis=0)
    if (minimum < 0).any():
        matrix = matrix - minimum
    return matrix / matrix.max(axis=0)


def test_v8_mean_shift_max(selfplay_store: str, v8_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "activations"

    report = kgzarr.extract(store=selfplay_store, model=v8_model, layers=["rconv3.out"], out=out, device="cpu")

    result = np.load(out / "pooled_rconv3.out.npy")
    paths, rows = _source_rows(out)
    expected = _shift_max(_recompute(v8_model, "rconv3.out", paths, rows))
    assert result.dtype == np.float32
    assert result.shape == (3654, 96)
    assert len(paths) == 3654
    assert report.forward_rows == 3654
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_meta_keys(selfplay_store: str, v8_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "activations"

    kgzarr.extract(store=selfplay_store, model=v8_model, layers=["trunk_block_1_output"], out=out, device="cpu")

    meta = json.loads((out / "pooled_meta.json").read_text(encoding="utf-8"))
    assert (out / "pooled_trunk_block_1.npy").is_file()
    assert meta["layer"] == "trunk_block_1_output"
    assert meta["layers"]["trunk_block_1"]["canonical_layer"] == "trunk_after_block1"
    assert meta["model"]["sha256"] == "f5d32604e3675c480c7c8f6aa579a1ea857135628a0afccc8fa56330fbacd38d"
    assert meta["model"]["version"] == 8
    assert meta["positions"] == 3654
    assert meta["files"] == 9
    assert meta["pooled_channels"] == 96
    assert meta["pooling_method"] == "global_average"
    assert meta["board_sizes"] == {"7x7": 3654}
    assert len(meta["layers"]["trunk_block_1"]["offsets"]) == 96
    assert len(meta["layers"]["trunk_block_1"]["scales"]) == 96
    assert meta["store"]["content_fingerprint"]


def test_grid3_mixed_boards(mixed_store: str, v8_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "activations"

    kgzarr.extract(
        store=mixed_store, model=v8_model, layers=["rconv2.out"], out=out, pooling="grid:3", nonneg="none", scale="none"
    )

    result = np.load(out / "pooled_rconv2.out.npy")
    paths, rows = _source_rows(out)
    expected = _recompute(v8_model, "rconv2.out", paths, rows, grid=3)
    assert result.shape == (1237, 9 * 96)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_exact_rows_then_reuse(selfplay_store: str, v8_model: Path, tmp_path: Path) -> None:
    before = forward_rows()

    first = kgzarr.extract(
        store=selfplay_store, model=v8_model, layers=["rconv1.out"], out=tmp_path / "a", scheduler="sync"
    )
    middle = forward_rows()
    second = kgzarr.extract(
        store=selfplay_store, model=v8_model, layers=["rconv1.out"], out=tmp_path / "b", scale="std", scheduler="sync"
    )

    assert middle - before == 3654
    assert forward_rows() == middle
    assert first.forward_rows == 3654
    assert second.forward_rows == 0
    assert second.reused_rows == 3654
    np.testing.assert_allclose(
        np.load(tmp_path / "b" / "pooled_rconv1.out.npy").std(axis=0), np.ones(96), rtol=1e-4
    )


def test_grown_store_computes_new_rows(shared_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    """Pins a store that grew by new self-play files being run through the network from scratch."""
    store = str(tmp_path / "grow.zarr")
    kgzarr.ingest(shared_data / "selfplay7", store, chunk_rows=512)
    options = {"model": tiny_model, "layers": ["rconv2.out"], "nonneg": "none", "scale": "none", "chunk_rows": 512}
    first = kgzarr.extract(store=store, out=tmp_path / "first", **options)

    kgzarr.ingest([shared_data / "selfplay7", shared_data / "selfplay_mixed"], store)
    grown = kgzarr.extract(store=store, out=tmp_path / "grown", **options)

    fresh_store = str(tmp_path / "fresh.zarr")
    kgzarr.ingest([shared_data / "selfplay7", shared_data / "selfplay_mixed"], fresh_store, chunk_rows=512)
    fresh = kgzarr.extract(store=fresh_store, out=tmp_path / "fresh", **options)
    old_rows = first.rows
    partial_chunk_rows = old_rows % 512
    assert grown.rows == fresh.rows
    assert grown.forward_rows == grown.rows - old_rows + partial_chunk_rows
    np.testing.assert_array_equal(
        np.load(tmp_path / "grown" / "pooled_rconv2.out.npy"), np.load(tmp_path / "fresh" / "pooled_rconv2.out.npy")
    )
