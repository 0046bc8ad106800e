"""SGF games through ingest and extract give the same pooled rows as KataGo-featurized training files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from kgzarr.data.ingest import ingest
from kgzarr.data.store import open_positions
from kgzarr.extraction.run import extract

pytestmark = pytest.mark.shared

V8_MODEL = "models/g170-b6c96-s175395328-d26788732.bin.gz"
GAMES_IN_SGF7_NPZ = 200


def _npz_row_keys(shared_data: Path) -> list[tuple[int, int]]:
    """(game_index, move_number) of every sgf7_npz row, in store order (file, then row)."""
    with (shared_data / "sgf7_npz" / "positions.csv").open(newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: (row["file"], int(row["row"])))
    return [(int(row["game_index"]), int(row["move_number"])) for row in rows]


def test_sgf_matches_npz(shared_data: Path, tmp_path: Path) -> None:
    games = tmp_path / "games"
    games.mkdir()
    lines = (shared_data / "sgf7" / "AFD4C8C7C06DFC0C.sgfs").read_text().splitlines()[:GAMES_IN_SGF7_NPZ]
    (games / "first200.sgfs").write_text("\n".join(lines) + "\n")
    model = shared_data / V8_MODEL
    options = {"model": model, "layers": ["rconv3.out"], "nonneg": "none", "scale": "none", "device": "cpu"}

    ingest(games, str(tmp_path / "sgf.zarr"), board_size=7)
    ingest(shared_data / "sgf7_npz", str(tmp_path / "npz.zarr"))
    extract(store=str(tmp_path / "sgf.zarr"), out=tmp_path / "from_sgf", **options)
    extract(store=str(tmp_path / "npz.zarr"), out=tmp_path / "from_npz", **options)

    from_sgf = np.load(tmp_path / "from_sgf" / "pooled_rconv3.out.npy")
    from_npz = np.load(tmp_path / "from_npz" / "pooled_rconv3.out.npy")
    sgf_positions = open_positions(str(tmp_path / "sgf.zarr"))
    sgf_keys = list(zip(sgf_positions["game_index"].values.tolist(), sgf_positions["move_number"].values.tolist()))
    row_of_key = {key: row for row, key in enumerate(sgf_keys)}
    npz_keys = _npz_row_keys(shared_data)
    matched = [row_of_key[key] for key in npz_keys]
    assert from_sgf.shape == (6720, 96)
    assert from_npz.shape == (len(npz_keys), 96)
    np.testing.assert_allclose(from_sgf[matched], from_npz, rtol=1e-6, atol=1e-6)
