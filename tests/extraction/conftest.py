"""Fixtures for extract tests: real stores ingested from ../shared/data and small random networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgzarr.data.ingest import ingest
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

V8_MODEL = "models/g170-b6c96-s175395328-d26788732.bin.gz"


@pytest.fixture(scope="session")
def v8_model(shared_data: Path) -> Path:
    return shared_data / V8_MODEL


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-block, 8-channel network written to a real .bin.gz file."""
    path = tmp_path_factory.mktemp("models") / "tiny.bin.gz"
    desc = random_model("tiny", num_blocks=2, trunk_channels=8, mid_channels=8, gpool_channels=4, seed=5)
    write_model(desc, path)
    return path


@pytest.fixture
def selfplay_store(shared_data: Path, tmp_path: Path) -> str:
    """A fresh store of selfplay7 (3654 rows) in chunks of 512 rows."""
    store = str(tmp_path / "selfplay7.zarr")
    ingest(shared_data / "selfplay7", store, chunk_rows=512)
    return store


@pytest.fixture
def mixed_store(shared_data: Path, tmp_path: Path) -> str:
    """A fresh store of selfplay_mixed (1237 rows on 5x5 to 7x7 boards) in chunks of 256 rows."""
    store = str(tmp_path / "mixed.zarr")
    ingest(shared_data / "selfplay_mixed", store, chunk_rows=256)
    return store
