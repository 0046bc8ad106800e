"""Dask clusters for an extract: start a LocalCluster, connect to a scheduler, preload the network.

The ``scheduler`` option of an extract reaches this module in one of four forms:

- ``threads``, ``processes``, ``sync`` or None: Dask's local schedulers, no cluster;
- ``local:N``: a ``distributed.LocalCluster`` of N worker processes on this
  machine, started here, listening on the loopback interface only, and shut
  down when the extract ends;
- a scheduler address (``tcp://host:8786``): an existing cluster, started with
  ``dask scheduler`` / ``dask worker``, dask-jobqueue or dask-kubernetes. Only
  the connection is closed at the end;
- a ``distributed.Client``: used as it is and left open.

On a cluster, :class:`NetworkPreload` makes every worker, including one that
joins or restarts mid-run, load the network from its file when it starts.
Only the file path and SHA-256 travel through the scheduler, never the weights.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import WorkerPlugin

from kgzarr.errors import ConfigError, KgzarrError
from kgzarr.extraction.scheduling import SchedulerChoice, choose_scheduler, is_client
from kgzarr.extraction.worker import NetworkRef, drop_network, get_network

__all__ = ["NetworkPreload", "open_client", "open_scheduler", "dashboard_link"]

logger = logging.getLogger(__name__)

_LOCAL_CLUSTER = re.compile(r"local:(\d+)")
# Protocols of distributed's communication layer.
_SCHEDULER_ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss|inproc)://\S+")


@contextmanager
def open_scheduler(scheduler: Any, device: str, network: NetworkRef | None = None) -> Iterator[SchedulerChoice]:
    """Resolve the ``scheduler`` option for the length of a ``with`` block; yield its :class:`SchedulerChoice`.

    With ``network``, the network is loaded on every worker of a cluster
    when the block starts, and dropped from their memory when it ends.
    """
    with open_client(scheduler, device) as client:
        choice = choose_scheduler(client if client is not None else scheduler, device)
        if network is not None:
            _check_loadable(network, choice)
        if network is None or client is None:
            yield choice
            return
        with _preloaded(client, network):
            yield choice


@contextmanager
def open_client(scheduler: Any, device: str) -> Iterator[Any]:
    """Yield the ``distributed.Client`` that the ``scheduler`` option names, or None for a local scheduler.

    ``local:N`` starts a LocalCluster and an address connects to a running
    scheduler; both are closed when the block ends. A Client passed in is
    yielded unchanged and stays open.
    """
    if is_client(scheduler) or not isinstance(scheduler, str):
        yield scheduler if is_client(scheduler) else None
        return

    local = _LOCAL_CLUSTER.fullmatch(scheduler)
    if local is not None:
        with _local_cluster(int(local.group(1)), device) as client:
            yield client
    elif _SCHEDULER_ADDRESS.fullmatch(scheduler):
        with _connected(scheduler) as client:
            yield client
    else:
        yield None


def dashboard_link(client: Any) -> str:
    """Return the URL of the cluster's Dask dashboard (its pages need the bokeh package)."""
    return str(client.dashboard_link)


@contextmanager
def _local_cluster(workers: int, device: str) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ConfigError(f"invalid scheduler local:{workers}; use local:N with N >= 1 worker processes")

    # A GPU worker runs two tasks at once, so that one chunk is read and
    # unpacked while the other runs through the network. A CPU worker runs one.
    threads = 2 if device.startswith("cuda") else 1
    # Port 0 picks a free port for the dashboard, so that two clusters on one machine never collide.
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    try:
        client = Client(cluster, set_as_default=False)
        try:
            logger.info(
                "started a LocalCluster of %d worker processes with %d threads each; dashboard at %s",
                workers, threads, dashboard_link(client),
            )
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
        logger.info("closed the LocalCluster")


@contextmanager
def _connected(address: str) -> Iterator[Any]:
    from distributed import Client

    try:
        client = Client(address, set_as_default=False)
    except OSError as exc:  # distributed raises OSError (or TimeoutError) when it cannot connect
        raise ConfigError(
            f"cannot connect to the Dask scheduler at {address} ({exc}); "
            "check the address and that 'dask scheduler' runs there, or use --scheduler local:N"
        ) from exc
    try:
        logger.info("connected to the Dask scheduler at %s; dashboard at %s", address, dashboard_link(client))
        yield client
    finally:
        client.close()


def _check_loadable(network: NetworkRef, choice: SchedulerChoice) -> None:
    """Raise ConfigError before any task runs when worker processes cannot load the network."""
    if network.path is None and choice.name in ("processes", "distributed"):
        raise ConfigError(
            f"network {network.sha256[:12]} was built in memory and has no model file, so the {choice.name} "
            "scheduler's workers cannot load it; write it with kgzarr.write_model and pass the path, "
            "or use the threads or sync scheduler"
        )


@contextmanager
def _preloaded(client: Any, network: NetworkRef) -> Iterator[None]:
    name = f"kgzarr-network-{network.sha256[:16]}-{network.device}"
    # Registering waits until every worker has tried to load the network.
    client.register_plugin(NetworkPreload(network), name=name)
    try:
        yield
    finally:
        if client.status == "running":
            client.unregister_worker_plugin(name)


class NetworkPreload(WorkerPlugin):
    """Worker plugin that loads a network when a worker starts and drops it when the plugin is removed.

    Only the :class:`~kgzarr.extraction.worker.NetworkRef` is pickled into
    the plugin, so the weights never pass through the scheduler.
    """

    def __init__(self, network: NetworkRef) -> None:
        self.network = network

    async def setup(self, worker: Any) -> None:
        # Loading a large network takes seconds, so it runs in a thread and the
        # worker's event loop keeps replying to the scheduler's heartbeats.
        try:
            await asyncio.get_running_loop().run_in_executor(None, get_network, self.network, worker.name)
        except KgzarrError as exc:
            # Tasks on this worker raise the same error again, which stops the run with it. Raised
            # here, it would reach the client as a plain Exception holding its repr (distributed 2026.8).
            logger.warning("worker %s failed to load network %s: %s", worker.name, self.network.path, exc)

    def teardown(self, worker: Any) -> None:
        drop_network(self.network)
