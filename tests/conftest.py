"""Shared fixtures: paths to the real data in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(
    __import__("os").environ.get("KGZARR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return ../shared/data, or skip the test with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent; set KGZARR_SHARED_DATA to run this test")
    return SHARED_DATA
