"""kgzarr: pooled KataGo layer activations over self-play positions, out-of-core.

The public functions are imported lazily, so ``import kgzarr`` stays fast and
does not load torch until a network is needed.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from kgzarr._version import __version__

logging.getLogger("kgzarr").addHandler(logging.NullHandler())

# Public name -> module that defines it.
_LAZY = {
    "load_model": "kgzarr.model.network",
    "KataGoNet": "kgzarr.model.network",
    "read_model": "kgzarr.model.reader",
    "write_model": "kgzarr.model.writer",
    "ingest": "kgzarr.data.ingest",
    "open_positions": "kgzarr.data.store",
    "pooled_activations": "kgzarr.extraction.pipeline",
    "extract": "kgzarr.extraction.run",
    "open_activations": "kgzarr.extraction.outputs",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'kgzarr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
