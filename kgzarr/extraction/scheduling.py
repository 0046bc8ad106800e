"""Pick the Dask scheduler and size torch threads to it; run chunk tasks with progress.

``scheduler`` values accepted by :func:`choose_scheduler`:

- ``None``: Dask's local threaded scheduler, sized to the machine (see below).
- ``"threads"``, ``"processes"``, ``"sync"``: Dask's local schedulers.
- a ``distributed.Client``: its workers run the tasks.

Each task sets ``torch.set_num_threads`` to :attr:`SchedulerChoice.torch_threads`,
so that workers × torch threads stays close to the CPU cores of a machine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from dask.callbacks import Callback
from dask.delayed import Delayed

from kgzarr.errors import ConfigError

__all__ = ["SchedulerChoice", "choose_scheduler", "run_tasks"]

logger = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("threads", "processes", "sync")


@dataclass(frozen=True)
class SchedulerChoice:
    """Scheduler settings of an extract; ``scheduler`` is passed to ``dask.compute``."""

    name: str
    scheduler: Any
    workers: int
    torch_threads: int

    def threads_for(self, tasks: int) -> int:
        """Return torch threads per task when only ``tasks`` tasks run, so idle workers leave their cores to others."""
        if self.name == "distributed" or tasks >= self.workers:
            return self.torch_threads
        cores = os.cpu_count() or 1
        return max(1, cores // max(1, tasks))


def choose_scheduler(scheduler: Any, device: str) -> SchedulerChoice:
    """Resolve the ``scheduler`` option into a :class:`SchedulerChoice`."""
    cores = os.cpu_count() or 1
    if scheduler is None:
        scheduler = "threads"

    if isinstance(scheduler, str):
        if scheduler not in LOCAL_SCHEDULERS:
            raise ConfigError(
                f"invalid scheduler {scheduler!r}; use threads, processes, sync or pass a distributed.Client"
            )
        return _local_choice(scheduler, cores, device)

    if _is_client(scheduler):
        return _client_choice(scheduler, device)
    raise ConfigError(f"invalid scheduler {scheduler!r}; use threads, processes, sync or pass a distributed.Client")


def _local_choice(name: str, cores: int, device: str) -> SchedulerChoice:
    if name == "sync":
        return SchedulerChoice(name, "sync", 1, cores)
    # Two workers let one chunk be read and unpacked while another runs
    # through the network, and the torch threads share the remaining cores.
    workers = 2 if device.startswith("cuda") else max(1, min(cores, 2))
    return SchedulerChoice(name, name, workers, max(1, cores // workers))


def _client_choice(client: Any, device: str) -> SchedulerChoice:
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(worker.get("nthreads", 1) for worker in workers.values()) or 1
    # NOTE: this assumes that every worker host has as many cores as this
    # machine, so a heterogeneous cluster gets a rough thread budget.
    cores = os.cpu_count() or 1
    per_host_threads = max(1, threads // max(1, len({worker.get("host") for worker in workers.values()})))
    return SchedulerChoice("distributed", client, threads, max(1, cores // per_host_threads))


def _is_client(value: Any) -> bool:
    try:
        from distributed import Client
    except ImportError:  # distributed is a dependency, but keep local runs working without it
        return False
    return isinstance(value, Client)


def run_tasks(
    tasks: Sequence[Delayed],
    choice: SchedulerChoice,
    on_done: Callable[[int, Any], None],
) -> list[Any]:
    """Compute ``tasks``, calling ``on_done(index, result)`` as each one finishes; return the results."""
    if not tasks:
        return []
    if choice.name == "distributed":
        return _run_on_client(tasks, choice.scheduler, on_done)

    index_of = {task.key: index for index, task in enumerate(tasks)}
    with _DoneCallback(index_of, on_done):
        kwargs = {"num_workers": choice.workers} if choice.name != "sync" else {}
        return list(dask.compute(*tasks, scheduler=choice.scheduler, **kwargs))


def _run_on_client(tasks: Sequence[Delayed], client: Any, on_done: Callable[[int, Any], None]) -> list[Any]:
    from distributed import as_completed

    futures = client.compute(list(tasks))
    index_of = {future.key: index for index, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for future in as_completed(futures):
        index = index_of[future.key]
        results[index] = future.result()
        on_done(index, results[index])
    return results


class _DoneCallback(Callback):
    """Dask local-scheduler callback that reports finished chunk tasks."""

    def __init__(self, index_of: dict[Any, int], on_done: Callable[[int, Any], None]) -> None:
        super().__init__()
        self._index_of = index_of
        self._on_done = on_done

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        index = self._index_of.get(key)
        if index is not None:
            self._on_done(index, result)
