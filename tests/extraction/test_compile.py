"""Extraction with torch.compile'd trunk blocks gives the eager results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgzarr.data.ingest import ingest
from kgzarr.extraction.run import extract

pytestmark = [pytest.mark.shared, pytest.mark.slow]


# torch 2.13's inductor calls its own deprecated torch.jit.script_method while compiling.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_matches_eager(shared_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    first_file = sorted((shared_data / "selfplay7").rglob("*.npz"))[0]
    # Two stores, so the compiled run cannot reuse the eager run's raw values.
    ingest(first_file, str(tmp_path / "eager.zarr"))
    ingest(first_file, str(tmp_path / "compiled.zarr"))
    options = {"model": tiny_model, "layers": ["rconv2.out"], "nonneg": "none", "scale": "none"}

    eager = extract(store=str(tmp_path / "eager.zarr"), out=tmp_path / "eager", **options)
    compiled = extract(store=str(tmp_path / "compiled.zarr"), out=tmp_path / "compiled", compile_blocks=True, **options)

    assert compiled.forward_rows == eager.rows
    np.testing.assert_allclose(
        np.load(tmp_path / "compiled" / "pooled_rconv2.out.npy"),
        np.load(tmp_path / "eager" / "pooled_rconv2.out.npy"),
        rtol=1e-5,
        atol=1e-6,
    )
