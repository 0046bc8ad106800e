"""Per-process cache of loaded networks, and the counts of loads and rows they have seen.

Chunk tasks carry a small :class:`NetworkRef` (model path, SHA-256 and
device), never the network: a torch module in the task graph would be
pickled into every task sent to a process or a distributed worker. Each
process loads a network the first time one of its tasks needs it and keeps
it for later tasks, keyed by (SHA-256, device). On a ``distributed`` cluster
the worker plugin in :mod:`kgzarr.extraction.cluster` loads it when the
worker joins, so tasks find it cached.

The cache and the counters are module-level on purpose: they are per-process
state, like a worker's own memory, and are guarded by a lock because the
threaded scheduler runs several tasks of one process at once.
"""

from __future__ import annotations

import copy

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from kgzarr.errors import ConfigError, ModelFormatError

if TYPE_CHECKING:
    from kgzarr.model.network import KataGoNet

__all__ = [
    "NetworkRef",
    "network_ref",
    "cache_network",
    "get_network",
    "drop_network",
    "local_device",
    "batch_size_limit",
    "limit_batch_size",
    "count_forward_rows",
    "forward_rows",
    "network_loads",
]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_networks: dict[tuple[str, str], KataGoNet] = {}
_batch_limits: dict[tuple[object, ...], int] = {}
_counters = {"forward_rows": 0, "loads": 0}


@dataclass(frozen=True)
class NetworkRef:
    """Reference to a network that tasks find or load by it: file path, SHA-256 and torch device.

    ``path`` is absolute, so that worker processes started in another
    folder find the same file.
    """

    path: str | None
    sha256: str
    device: str
    # Trunk blocks passed through torch.compile (see KataGoNet.compile_blocks).
    compiled: bool = False


def network_ref(net: KataGoNet, device: str, compiled: bool = False) -> NetworkRef:
    """Describe a loaded network for tasks, and cache it in this process for ``device``."""
    path = None if net.path is None else os.path.abspath(net.path)
    ref = NetworkRef(path, net.sha256, device, compiled)
    cache_network(net, device, compiled)
    return ref


def cache_network(net: KataGoNet, device: str, compiled: bool = False) -> None:
    """Keep ``net`` (moved to ``device`` when it lives elsewhere) for tasks in this process.

    With ``compiled``, the cache keeps a compiled copy, so the caller's
    network object stays as it was.
    """
    with _lock:
        key = (net.sha256, device, compiled)
        if key not in _networks:
            same_device = _device_of(net) == ("cuda:0" if device == "cuda" else device)
            cached = net if same_device else _moved(net, device)
            if compiled:
                cached = copy.deepcopy(cached).compile_blocks()
            _networks[key] = cached


def get_network(ref: NetworkRef, worker_name: object = None) -> KataGoNet:
    """Return this process's network for ``ref``, loading it on first use.

    ``worker_name`` is the distributed worker's name (see :func:`local_device`);
    by default it is that of the worker running the current task, if any.
    """
    key = (ref.sha256, ref.device, ref.compiled)
    with _lock:
        net = _networks.get(key)
        if net is None:
            net = _load(ref, _worker_name() if worker_name is None else worker_name)
            _networks[key] = net
    return net


def drop_network(ref: NetworkRef) -> None:
    """Forget this process's copy of the network for ``ref``, so its memory can be freed."""
    with _lock:
        _networks.pop((ref.sha256, ref.device, ref.compiled), None)


def local_device(device: str, worker_name: object, gpu_count: int) -> str:
    """Return the torch device a worker uses for ``device``.

    Workers of a ``local:N`` cluster are named 0..N-1 and all see every GPU
    of the machine, so plain ``cuda`` becomes ``cuda:<name mod GPUs>``: one
    GPU per worker. A worker that sees one GPU (dask-cuda's LocalCUDACluster,
    or ``CUDA_VISIBLE_DEVICES`` set per worker) and a worker whose name is
    not a number keep ``device`` unchanged.
    """
    if device != "cuda" or gpu_count <= 1:
        return device
    rank = worker_name if isinstance(worker_name, int) else None
    if isinstance(worker_name, str) and worker_name.isdigit():
        rank = int(worker_name)
    return device if rank is None else f"cuda:{rank % gpu_count}"


def _load(ref: NetworkRef, worker_name: object) -> KataGoNet:
    from kgzarr.model.network import load_model

    if ref.path is None:
        raise ConfigError(
            f"network {ref.sha256[:12]} has no model file, so worker processes cannot load it; "
            "write it with kgzarr.write_model and pass the path, or use the threads or sync scheduler"
        )
    device = local_device(ref.device, worker_name, torch.cuda.device_count() if ref.device == "cuda" else 0)
    if device != ref.device:
        # NOTE: untested without a multi-GPU machine. Setting the current
        # device keeps pinned host memory and cuDNN handles on this worker's GPU.
        torch.cuda.set_device(device)

    net = load_model(ref.path, device=device)
    if net.sha256 != ref.sha256:
        raise ModelFormatError(
            f"model file {ref.path} changed while the extract ran (SHA-256 {net.sha256[:12]}, "
            f"expected {ref.sha256[:12]}); restore the file or start the extract again"
        )
    if ref.compiled:
        net.compile_blocks()
    _counters["loads"] += 1
    logger.info("loaded network %s on %s in process %d", ref.path, device, os.getpid())
    return net


def _worker_name() -> object:
    """Return the name of the distributed worker running this code, or None outside one."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return get_worker().name
    except ValueError:  # not inside a distributed worker
        return None


def _device_of(net: KataGoNet) -> str:
    parameter = next(net.parameters(), None)
    if parameter is None:
        return "cpu"
    return str(parameter.device)


def _moved(net: KataGoNet, device: str) -> KataGoNet:
    import copy

    return copy.deepcopy(net).to(device)


def batch_size_limit(key: tuple[object, ...], requested: int) -> int:
    """Return ``requested``, or less when an earlier batch with this ``key`` ran out of GPU memory."""
    with _lock:
        return min(requested, _batch_limits.get(key, requested))


def limit_batch_size(key: tuple[object, ...], batch_size: int) -> None:
    """Cap the batch size of later chunk tasks with this ``key`` in this process at ``batch_size``."""
    with _lock:
        _batch_limits[key] = min(batch_size, _batch_limits.get(key, batch_size))


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
