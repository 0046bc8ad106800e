"""Pick the Dask scheduler and size torch threads to it; run chunk tasks with progress.

``scheduler`` values accepted by :func:`choose_scheduler`:

- ``None``: Dask's local threaded scheduler, sized to the machine (see below).
- ``"threads"``, ``"processes"``, ``"sync"``: Dask's local schedulers.
- a ``distributed.Client``: its workers run the tasks.

``local:N`` and scheduler addresses (``tcp://host:8786``) become a Client in
:mod:`kgzarr.extraction.cluster`, which then calls :func:`choose_scheduler`.

Each task sets ``torch.set_num_threads`` to :attr:`SchedulerChoice.torch_threads`,
so that workers × torch threads stays close to the CPU cores of a machine.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.system
from dask.callbacks import Callback

from kgzarr.errors import ConfigError, KgzarrError

__all__ = ["SchedulerChoice", "TaskCall", "choose_scheduler", "is_client", "run_tasks", "SCHEDULER_CHOICES"]

logger = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("threads", "processes", "sync")

# Every form of the scheduler option, for error messages.
SCHEDULER_CHOICES = "threads, processes, sync, local:N, a scheduler address such as tcp://host:8786, or a distributed.Client"

# A chunk task: the function and its positional arguments.
TaskCall = tuple[Callable[..., Any], tuple[Any, ...]]


@dataclass(frozen=True)
class SchedulerChoice:
    """Scheduler settings of an extract; ``scheduler`` is passed to ``dask.compute``, or is the Client."""

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
    """Resolve a local scheduler name or a ``distributed.Client`` into a :class:`SchedulerChoice`."""
    cores = os.cpu_count() or 1
    if scheduler is None:
        scheduler = "threads"

    if isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS:
        return _local_choice(scheduler, cores, device)
    if is_client(scheduler):
        return _client_choice(scheduler)
    raise ConfigError(f"invalid scheduler {scheduler!r}; use {SCHEDULER_CHOICES}")


def _local_choice(name: str, cores: int, device: str) -> SchedulerChoice:
    if name == "sync":
        return SchedulerChoice(name, "sync", 1, cores)
    # Two workers let one chunk be read and unpacked while another runs
    # through the network, and the torch threads share the remaining cores.
    workers = 2 if device.startswith("cuda") else max(1, min(cores, 2))
    return SchedulerChoice(name, name, workers, max(1, cores // workers))


def _client_choice(client: Any) -> SchedulerChoice:
    workers = client.scheduler_info()["workers"]
    if not workers:
        logger.info("waiting for a Dask worker to join the scheduler at %s", client.scheduler.address)
        client.wait_for_workers(1)
        workers = client.scheduler_info()["workers"]

    threads = sum(worker.get("nthreads", 1) for worker in workers.values())
    cores = client.run(_usable_cores)
    host_threads: dict[str, int] = defaultdict(int)
    host_cores: dict[str, int] = {}
    for address, worker in workers.items():
        host_threads[worker["host"]] += worker.get("nthreads", 1)
        host_cores[worker["host"]] = cores.get(address, 1)
    # NOTE: sized for the workers present now; workers that join later (an
    # adaptive dask-jobqueue cluster) get the same count whatever their cores.
    torch_threads = min(max(1, host_cores[host] // host_threads[host]) for host in host_threads)
    return SchedulerChoice("distributed", client, threads, torch_threads)


def _usable_cores() -> int:
    """Return the cores this process may use, counting CPU affinity and cgroup quotas (Dask's count)."""
    return int(dask.system.CPU_COUNT)


def is_client(value: Any) -> bool:
    """Return True when ``value`` is a ``distributed.Client``."""
    try:
        from distributed import Client
    except ImportError:  # distributed is a dependency, but keep local runs working without it
        return False
    return isinstance(value, Client)


def run_tasks(
    calls: Sequence[TaskCall],
    choice: SchedulerChoice,
    on_done: Callable[[int, Any], None],
) -> list[Any]:
    """Run each ``(function, args)`` as a task, calling ``on_done(index, result)`` as each one finishes.

    Returns the results in the order of ``calls``. The first task that raises
    stops the run with its error: the scheduler starts no further tasks.
    """
    if not calls:
        return []
    if choice.name == "distributed":
        return _run_on_client(calls, choice.scheduler, on_done)

    tasks = [dask.delayed(function, pure=False, traverse=False)(*args) for function, args in calls]
    index_of = {task.key: index for index, task in enumerate(tasks)}
    with _DoneCallback(index_of, on_done):
        kwargs = {"num_workers": choice.workers} if choice.name != "sync" else {}
        return list(dask.compute(*tasks, scheduler=choice.scheduler, **kwargs))


@dataclass(frozen=True)
class TaskError:
    """A kgzarr error raised inside a distributed task, sent back as the task's result."""

    error: KgzarrError


def call_returning_errors(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function``; return a kgzarr error it raises as a :class:`TaskError` instead of raising it.

    A kgzarr error is a complete report (bad data, a NaN), not a crash, so it
    travels back as a value: the worker does not log a traceback for it and
    the client raises it once.
    """
    try:
        return function(*args)
    except KgzarrError as exc:
        return TaskError(exc)


def _run_on_client(calls: Sequence[TaskCall], client: Any, on_done: Callable[[int, Any], None]) -> list[Any]:
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]
    futures = [
        client.submit(call_returning_errors, function, *args, key=f"{function.__name__}-{run_id}-{index}", pure=False)
        for index, (function, args) in enumerate(calls)
    ]
    index_of = {future.key: index for index, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    try:
        for future in as_completed(futures, loop=client.loop):
            index = index_of[future.key]
            results[index] = _result_of(future)
            on_done(index, results[index])
    finally:
        # On success this cancels nothing; on an error it stops the tasks that have not run.
        client.cancel([future for future in futures if not future.done()])
    return results


def _result_of(future: Any) -> Any:
    from distributed import KilledWorker

    try:
        result = future.result()
    except KilledWorker as exc:
        logger.error(
            "task %s was running on %d workers that died; a worker probably ran out of memory: "
            "lower --chunk-rows or --batch-size, or give each worker more memory",
            future.key, exc.allowed_failures + 1,
        )
        raise
    if isinstance(result, TaskError):
        raise result.error
    return result


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
