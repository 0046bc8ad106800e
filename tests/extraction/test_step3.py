"""The drop-in use of the ai_go_explain step-3 script: --positions-dir with ./layer_selection.yml."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from kgzarr.errors import ConfigError, LayerSelectionError
from kgzarr.extraction.run import extract

pytestmark = pytest.mark.shared


@pytest.mark.parametrize(("chosen", "tag"), [("rconv2.out", "rconv2.out"), ("trunk_block_1_output", "trunk_block_1")])
def test_step3_folder_run(
    shared_data: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: str, tag: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("layer_selection.yml").write_text(f"chosen_layer: {chosen}\nlayer_shape: 8×7×7\n", encoding="utf-8")
    positions = os.path.relpath(shared_data / "selfplay7", tmp_path)

    report = extract(positions_dir=positions, model=tiny_model, board_size=7, batch_size=512, device="cpu")

    matrix = np.load(Path("activations") / f"pooled_{tag}.npy")
    lines = Path("activations/pos_index_to_npz.txt").read_text(encoding="utf-8").split("\n")
    meta = json.loads(Path("activations/pooled_meta.json").read_text(encoding="utf-8"))
    assert matrix.shape == (3654, 8)
    assert report.forward_rows == 3654
    assert meta["layer"] == chosen
    assert len(lines) == 3654
    assert lines[0].startswith(positions + "/")
    assert all(Path(line).is_file() for line in set(lines))

    again = extract(positions_dir=positions, model=tiny_model, board_size=7, overwrite=True)
    assert again.forward_rows == 0
    np.testing.assert_array_equal(np.load(Path("activations") / f"pooled_{tag}.npy"), matrix)


def test_step3_missing_selection(shared_data: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(LayerSelectionError, match="layer_selection.yml not found"):
        extract(positions_dir=shared_data / "selfplay7", model=tiny_model)


def test_step3_wrong_board_size(shared_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.zarr"
    extract(positions_dir=shared_data / "selfplay7", store=store, model=tiny_model, layers=["rconv1.out"], out=tmp_path / "a")

    with pytest.raises(ConfigError, match="--board-size is 9"):
        extract(store=store, model=tiny_model, layers=["rconv1.out"], out=tmp_path / "b", board_size=9)
