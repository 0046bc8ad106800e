"""Per-process cache of loaded networks, and the count of rows they have seen.

Chunk tasks carry a small :class:`NetworkRef` (model path, SHA-256 and
device), never the network: a torch module in the task graph would be
pickled into every task sent to a process or a distributed worker. Each
process loads a network the first time one of its tasks needs it and keeps
it for later tasks, keyed by (SHA-256, device).

The cache and the counters are module-level on purpose: they are per-process
state, like a worker's own memory, and are guarded by a lock because the
threaded scheduler runs several tasks of one process at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kgzarr.errors import ConfigError, ModelFormatError

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = [
    "NetworkRef",
    "network_ref",
    "cache_network",
    "get_network",
    "count_forward_rows",
    "forward_rows",
    "network_loads",
]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_networks: dict[tuple[str, str], KataGoNet] = {}
_counters = {"forward_rows": 0, "loads": 0}


@dataclass(frozen=True)
class NetworkRef:
    """What a task needs to find or load a network: file path, SHA-256 and torch device."""

    path: str | None
    sha256: str
    device: str


def network_ref(net: KataGoNet, device: str) -> NetworkRef:
    """Describe a loaded network for tasks, and cache it in this process for ``device``."""
    path = None if net.path is None else str(net.path)
    ref = NetworkRef(path, net.sha256, device)
    cache_network(net, device)
    return ref


def cache_network(net: KataGoNet, device: str) -> None:
    """Keep ``net`` (moved to ``device`` when it lives elsewhere) for tasks in this process."""
    with _lock:
        key = (net.sha256, device)
        if key not in _networks:
            same_device = _device_of(net) == ("cuda:0" if device == "cuda" else device)
            _networks[key] = net if same_device else _moved(net, device)


def get_network(ref: NetworkRef) -> KataGoNet:
    """Return this process's network for ``ref``, loading it on first use."""
    key = (ref.sha256, ref.device)
    with _lock:
        net = _networks.get(key)
        if net is None:
            net = _load(ref)
            _networks[key] = net
    return net


def _load(ref: NetworkRef) -> KataGoNet:
    from kgzarr.model.network import load_model

    if ref.path is None:
        raise ConfigError(
            f"network {ref.sha256[:12]} has no model file, so worker processes cannot load it; "
            "write it with kgzarr.write_model and pass the path, or use the threads or sync scheduler"
        )
    net = load_model(ref.path, device=ref.device)
    if net.sha256 != ref.sha256:
        raise ModelFormatError(
            f"model file {ref.path} changed while the extract ran (SHA-256 {net.sha256[:12]}, "
            f"expected {ref.sha256[:12]}); restore the file or start the extract again"
        )
    _counters["loads"] += 1
    logger.info("loaded network %s on %s in this worker process", ref.path, ref.device)
    return net


def _device_of(net: KataGoNet) -> str:
    parameter = next(net.parameters(), None)
    if parameter is None:
        return "cpu"
    return str(parameter.device)


def _moved(net: KataGoNet, device: str) -> KataGoNet:
    import copy

    return copy.deepcopy(net).to(device)


def count_forward_rows(rows: int) -> None:
    """Add ``rows`` to this process's count of positions passed through a network."""
    with _lock:
        _counters["forward_rows"] += rows


def forward_rows() -> int:
    """Return how many positions tasks in this process have passed through a network.

    Under the ``threads`` and ``sync`` schedulers this counts every forward
    row of an extract; worker processes keep their own counts.
    """
    return _counters["forward_rows"]


def network_loads() -> int:
    """Return how many times this process has loaded a network from its file."""
    return _counters["loads"]
