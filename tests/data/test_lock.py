"""The store write lock, exercised by real processes."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgzarr.data.ingest import ingest
from kgzarr.data.lock import StoreLock, lock_path_for, read_lock_holder
from kgzarr.errors import StoreLockedError

# Holds the lock until its stdin closes, printing a line once it holds it.
_HOLDER_SCRIPT = (
    "import sys; from kgzarr.data.lock import StoreLock\n"
    "with StoreLock(sys.argv[1]):\n"
    "    print('locked', flush=True); sys.stdin.read()\n"
)


@pytest.fixture
def holder(tmp_path: Path):
    store = str(tmp_path / "s.zarr")
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER_SCRIPT, store], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    yield store, process
    if not process.stdin.closed:
        process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


def test_second_writer_fails_at_once(holder) -> None:
    store, process = holder
    started = time.monotonic()
    with pytest.raises(StoreLockedError, match=f"process {process.pid} on {socket.gethostname()}"):
        StoreLock(store).acquire()
    assert time.monotonic() - started < 2


def test_ingest_blocked_by_holder(holder, make_folder) -> None:
    store, _ = holder
    with pytest.raises(StoreLockedError, match=r"locked by kgzarr \(process"):
        ingest(make_folder([3]), store)
    assert not Path(store).exists()


def test_waits_until_released(holder) -> None:
    store, process = holder
    process.stdin.close()
    with StoreLock(store, timeout=30):
        holder_record = read_lock_holder(lock_path_for(store))
        assert holder_record["pid"] != process.pid
    assert read_lock_holder(lock_path_for(store)) is None


def test_timeout_expires(holder) -> None:
    store, _ = holder
    started = time.monotonic()
    with pytest.raises(StoreLockedError, match="after waiting 0.5 s"):
        StoreLock(store, timeout=0.5).acquire()
    assert time.monotonic() - started >= 0.5


def test_stale_lock_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Pins a killed ingest's lock blocking every later ingest of the store."""
    store = str(tmp_path / "s.zarr")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    record = {"host": socket.gethostname(), "pid": int(dead.stdout), "started": "2020-01-01T00:00:00+00:00", "token": "x"}
    Path(lock_path_for(store)).write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="kgzarr"):
        with StoreLock(store):
            assert read_lock_holder(lock_path_for(store))["token"] != "x"
    assert "taking over stale lock" in caplog.text
    assert str(record["pid"]) in caplog.text


def test_other_host_lock_kept(tmp_path: Path) -> None:
    store = str(tmp_path / "s.zarr")
    record = {"host": "some-other-host", "pid": 1, "started": "2020-01-01T00:00:00+00:00", "token": "x"}
    Path(lock_path_for(store)).write_text(json.dumps(record))
    with pytest.raises(StoreLockedError, match="process 1 on some-other-host"):
        StoreLock(store).acquire()


def test_two_ingests_race(tmp_path: Path, make_folder) -> None:
    folder = make_folder([200] * 6)
    store = str(tmp_path / "s.zarr")
    script = "import sys; from kgzarr.data.ingest import ingest; ingest(sys.argv[1], sys.argv[2], chunk_rows=16, max_batch_bytes=1)"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(folder), store], stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [process.communicate(timeout=120)[1] for process in processes]
    codes = sorted(process.returncode for process in processes)
    assert codes[0] == 0
    if codes[1] != 0:
        assert any("StoreLockedError" in stderr for stderr in results)
    report = ingest(folder, store)
    assert report.files_added == 0
    assert report.rows_total == 1200
