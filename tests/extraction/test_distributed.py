"""extract() on a real distributed.LocalCluster: same output, one network load per worker, lost workers, errors."""

from __future__ import annotations

import os
import shutil
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

import kgzarr
from kgzarr.cli import main
from kgzarr.errors import ConfigError, ModelFileNotFoundError, NonFiniteActivationError
from kgzarr.extraction.cluster import open_client, open_scheduler
from kgzarr.extraction.run import extract
from kgzarr.extraction.scheduling import run_tasks
from kgzarr.extraction.worker import NetworkRef, get_network, local_device, network_loads
from kgzarr.model.synthetic import random_model
from kgzarr.model.writer import write_model

pytestmark = pytest.mark.shared

LAYER = "rconv1.out"
NPY = "pooled_rconv1.out.npy"
# Small chunks give many tasks, so a worker can be killed while most are still to run.
CHUNK_ROWS = 64
# Bounds every cluster operation of these tests, so that a hung cluster fails the test instead of the suite.
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def source_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """selfplay_mixed (1237 rows) ingested once; each test copies it, because an extract writes raw values into its store."""
    store = tmp_path_factory.mktemp("distributed") / "mixed.zarr"
    kgzarr.ingest(shared_data / "selfplay_mixed", str(store), chunk_rows=256)
    return store


@pytest.fixture(scope="module")
def expected(source_store: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The single-process result that every cluster run must reproduce."""
    folder = tmp_path_factory.mktemp("expected")
    store = _copy_store(source_store, folder)
    extract(store=store, model=tiny_model, layers=[LAYER], out=folder / "out", device="cpu", scheduler="sync", chunk_rows=CHUNK_ROWS)
    return np.load(folder / "out" / NPY)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes with one thread each, listening on the loopback interface only."""
    with dask.config.set({"distributed.comm.timeouts.connect": "10s"}):
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster, Client(cluster, set_as_default=False, timeout=TIMEOUT_S) as connected:
            yield connected


def _copy_store(source: Path, folder: Path) -> str:
    target = folder / "store.zarr"
    shutil.copytree(source, target)
    return str(target)


def _extract(store: str, model: Path, out: Path, scheduler: object, **options: object) -> np.ndarray:
    extract(store=store, model=model, layers=[LAYER], out=out, device="cpu", scheduler=scheduler, chunk_rows=CHUNK_ROWS, **options)
    return np.load(out / NPY)


def test_client_same_output(client: Client, source_store: Path, tiny_model: Path, expected: np.ndarray, tmp_path: Path) -> None:
    loads_before = client.run(network_loads)

    result = _extract(_copy_store(source_store, tmp_path), tiny_model, tmp_path / "out", client)

    loads_after = client.run(network_loads)
    np.testing.assert_array_equal(result, expected)
    assert len(loads_after) == 2
    for address, loads in loads_after.items():
        assert loads - loads_before[address] == 1, f"worker {address} loaded the network {loads - loads_before[address]} times"


def test_address_same_output(client: Client, source_store: Path, tiny_model: Path, expected: np.ndarray, tmp_path: Path) -> None:
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    loads_before = client.run(network_loads)

    result = _extract(_copy_store(source_store, tmp_path), tiny_model, tmp_path / "out", address)

    np.testing.assert_array_equal(result, expected)
    loads_after = client.run(network_loads)
    assert all(loads_after[worker] - loads_before[worker] == 1 for worker in loads_after)
    assert client.status == "running", "closing the connection of a scheduler address must leave the cluster running"


def test_kgzarr_error_stops_run(client: Client, source_store: Path, tmp_path: Path) -> None:
    """Pins that a chunk's kgzarr error reaches the caller as that error alone, without a worker traceback."""
    desc = random_model("overflow", num_blocks=1, trunk_channels=8, mid_channels=8, gpool_channels=4, block_kinds=["ordinary_block"], seed=2)
    desc.trunk.blocks[0].final_conv.weight[3] = 3e38  # overflows to inf
    model = tmp_path / "overflow.bin.gz"
    write_model(desc, model)
    store = _copy_store(source_store, tmp_path)
    done: list[int] = []

    with pytest.raises(NonFiniteActivationError, match=r"for position \d+ \(.*\.npz, row \d+\)") as caught:
        extract(
            store=store, model=model, layers=[LAYER], out=tmp_path / "out", device="cpu", scheduler=client,
            chunk_rows=CHUNK_ROWS, progress=lambda rows, total: done.append(rows),
        )

    frames = "".join(traceback.format_exception(caught.value))
    assert "distributed/worker.py" not in frames
    assert done[-1] < 1237
    assert not (tmp_path / "out" / NPY).exists()


def test_model_missing_on_workers(client: Client, tmp_path: Path) -> None:
    """Pins that a model file the workers cannot read stops the run with kgzarr's error, not a wrapped one."""
    missing = NetworkRef(str(tmp_path / "absent.bin.gz"), "0" * 64, "cpu")

    with pytest.raises(ModelFileNotFoundError, match="absent.bin.gz"):
        with open_scheduler(client, "cpu", missing) as choice:
            run_tasks([(get_network, (missing,))], choice, lambda index, result: None)

    assert client.status == "running"


def test_killed_worker_same_output(source_store: Path, tiny_model: Path, expected: np.ndarray, tmp_path: Path) -> None:
    """Pins that losing a worker mid-run only reschedules its tasks: the output stays the same."""
    store = _copy_store(source_store, tmp_path)
    killed: list[int] = []

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as cluster, Client(cluster, set_as_default=False, timeout=TIMEOUT_S) as client:
        pids = list(client.run(os.getpid).values())

        def kill_one_worker(rows: int, total: int) -> None:
            if not killed and rows >= 4 * CHUNK_ROWS:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(rows)

        result = _extract(store, tiny_model, tmp_path / "out", client, progress=kill_one_worker)
        pids_after = list(client.run(os.getpid).values())

    assert killed and killed[0] < 1237 // 2, "the worker was killed too late to leave tasks to reschedule"
    assert pids[0] not in pids_after
    np.testing.assert_array_equal(result, expected)


def test_cli_local_cluster(source_store: Path, tiny_model: Path, expected: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _copy_store(source_store, tmp_path)

    code = main([
        "extract", "--store", store, "--model", str(tiny_model), "--layer", LAYER, "--out", str(tmp_path / "out"),
        "--device", "cpu", "--scheduler", "local:2", "--chunk-rows", str(CHUNK_ROWS), "--quiet",
    ])

    printed = capsys.readouterr().out
    assert code == 0
    assert "Dask dashboard: http://127.0.0.1:" in printed
    np.testing.assert_array_equal(np.load(tmp_path / "out" / NPY), expected)


def test_scheduler_option_errors(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="local:N"):
        with open_client("local:0", "cpu"):
            pass
    with pytest.raises(ConfigError, match="invalid scheduler 'thread'; use threads, processes, sync, local:N"):
        with open_scheduler("thread", "cpu"):
            pass
    with pytest.raises(ConfigError, match="no model file"):
        with open_scheduler("processes", "cpu", NetworkRef(None, "0" * 64, "cpu")):
            pass


def test_unreachable_address() -> None:
    """Pins a clear error, naming the address, when no scheduler listens there."""
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ConfigError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
            with open_client("tcp://127.0.0.1:9", "cpu"):
                pass


@pytest.mark.parametrize(
    ("device", "name", "gpus", "expected_device"),
    [
        ("cuda", 0, 2, "cuda:0"),
        ("cuda", 3, 2, "cuda:1"),
        ("cuda", "1", 4, "cuda:1"),
        ("cuda", 5, 1, "cuda"),  # one visible GPU: dask-cuda or CUDA_VISIBLE_DEVICES chose it
        ("cuda", "tcp://10.0.0.2:4000", 4, "cuda"),  # a `dask worker` named by its address
        ("cuda", None, 4, "cuda"),  # not inside a distributed worker
        ("cuda:2", 0, 4, "cuda:2"),
        ("cpu", 1, 4, "cpu"),
    ],
)
def test_local_device(device: str, name: object, gpus: int, expected_device: str) -> None:
    assert local_device(device, name, gpus) == expected_device
