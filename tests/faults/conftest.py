"""Fixtures for the fault tests: small self-play folders, a store, a tiny network and a CLI runner."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_helpers import CliResult, valid_arrays, write_npz

from kgzarr.cli import main
from kgzarr.data.ingest import ingest
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., CliResult]]:
    """Return a function that runs ``kgzarr ARGS --quiet`` in this process and captures stderr.

    The CLI reconfigures the ``kgzarr`` logger; the fixture restores it, so
    later tests that read logs through caplog still see them.
    """
    logger = logging.getLogger("kgzarr")
    saved = (list(logger.handlers), logger.level, logger.propagate, logging.getLogger().level)

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([*map(str, args), "--quiet"])
        return CliResult(code, capsys.readouterr().err)

    yield run
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
    logging.getLogger().setLevel(saved[3])


@pytest.fixture(scope="session")
def tiny_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-block, 8-channel network in a real .bin.gz file."""
    path = tmp_path_factory.mktemp("nets") / "tiny.bin.gz"
    write_model(random_model("tiny", num_blocks=2, trunk_channels=8, mid_channels=8, gpool_channels=4, seed=5), path)
    return path


@pytest.fixture
def positions(tmp_path: Path) -> Path:
    """A self-play folder of two valid files (40 and 30 rows of 7x7)."""
    folder = tmp_path / "selfplay"
    write_npz(folder / "tdata" / "a.npz", valid_arrays(40, seed=1))
    write_npz(folder / "tdata" / "b.npz", valid_arrays(30, seed=2))
    return folder


@pytest.fixture
def store(positions: Path, tmp_path: Path) -> Path:
    """A store ingested from ``positions`` in chunks of 16 rows."""
    path = tmp_path / "positions.zarr"
    ingest(positions, str(path), chunk_rows=16)
    return path
