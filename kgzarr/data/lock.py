"""The write lock that keeps two ingests from writing one store at the same time.

The lock is a small JSON file next to the store, ``<store>.lock``, recording the
holder's command (ingest or extract), host, pid, start time and a random token. It lives outside the store
because zarr warns about any file inside a hierarchy that is not part of it.

Policy: a second writer fails at once with :class:`StoreLockedError` naming the
holder, unless it was given a timeout, in which case it polls until the lock is
free or the timeout passes. A lock left by a process that no longer runs on this
host is stale; the next writer takes it over and logs a warning. A lock from
another host is never taken over, because its pid cannot be checked from here.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from types import TracebackType

import fsspec
from fsspec.implementations.local import LocalFileSystem

from kgzarr.errors import StoreLockedError

__all__ = ["StoreLock", "lock_path_for", "read_lock_holder", "process_alive"]

logger = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.2


def lock_path_for(store: str) -> str:
    """Return the lock file path (or URL) of a store path or URL."""
    return store.rstrip("/") + ".lock"


def read_lock_holder(lock_path: str) -> dict | None:
    """Return the holder recorded in a lock file, or None when there is no lock."""
    fs, path = fsspec.core.url_to_fs(lock_path)
    try:
        with fs.open(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        holder = None
    return holder if isinstance(holder, dict) else {"unreadable": text[:200]}


class StoreLock:
    """Exclusive write lock on one store, used as a context manager.

    ``timeout`` is in seconds; 0 fails at once when another process holds the lock.
    ``command`` names the holder's work (``ingest``, ``extract``) in the message a
    second writer gets.
    """

    def __init__(self, store: str, *, timeout: float = 0.0, command: str = "kgzarr") -> None:
        self.lock_path = lock_path_for(store)
        self._timeout = timeout
        self._fs, self._path = fsspec.core.url_to_fs(self.lock_path)
        self._local = isinstance(self._fs, LocalFileSystem)
        self._record = {
            "command": command,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex,
        }
        self._held = False

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, waiting up to the timeout; raise StoreLockedError when it stays held."""
        deadline = time.monotonic() + self._timeout
        while True:
            if self._try_create():
                self._held = True
                return
            holder = read_lock_holder(self.lock_path)
            if holder is not None and self._is_stale(holder):
                self._take_over(holder)
                continue
            if time.monotonic() >= deadline:
                raise StoreLockedError(self._locked_message(holder))
            time.sleep(_POLL_INTERVAL_S)

    def release(self) -> None:
        """Remove the lock file if this object still holds it."""
        if not self._held:
            return
        self._held = False
        holder = read_lock_holder(self.lock_path)
        if holder is not None and holder.get("token") == self._record["token"]:
            self._fs.rm(self._path)

    def _try_create(self) -> bool:
        payload = json.dumps(self._record).encode()
        if self._local:
            return _create_local_exclusive(self._path, payload)
        # NOTE: object stores have no portable exclusive create, so on them the
        # check and the write are two steps and two writers starting within
        # the same instant can both pass.
        if self._fs.exists(self._path):
            return False
        self._fs.pipe_file(self._path, payload)
        return True

    def _is_stale(self, holder: dict) -> bool:
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return isinstance(pid, int) and not process_alive(pid)

    def _take_over(self, holder: dict) -> None:
        logger.warning(
            "taking over stale lock %s: process %s on %s (started %s) no longer runs",
            self.lock_path, holder.get("pid"), holder.get("host"), holder.get("started"),
        )
        if not self._local:
            self._fs.rm(self._path)
            return
        # Renaming is atomic, so of two writers that both found the stale lock
        # only one moves it away. The other gets FileNotFoundError and retries.
        moved = f"{self._path}.stale-{uuid.uuid4().hex}"
        try:
            os.rename(self._path, moved)
        except FileNotFoundError:
            return
        if read_lock_holder(moved) != holder:
            # Another writer replaced the stale lock in the meantime: put its
            # lock back unless a third one already exists.
            try:
                os.link(moved, self._path)
            except FileExistsError:
                pass
        os.remove(moved)

    def _locked_message(self, holder: dict | None) -> str:
        if holder is None:
            who = "an unknown process"
        else:
            command = holder.get("command", "kgzarr")
            command = command if command == "kgzarr" else f"kgzarr {command}"
            who = f"{command} (process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')})"
        waited = f" after waiting {self._timeout:g} s" if self._timeout > 0 else ""
        return (
            f"the store is locked by {who}{waited}: {self.lock_path}; wait for that process to finish, "
            "or delete the lock file if that process is gone"
        )


def _create_local_exclusive(path: str, payload: bytes) -> bool:
    """Create ``path`` holding ``payload`` unless it exists; the file never appears half-written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.{uuid.uuid4().hex}.partial"
    with open(temporary, "wb") as handle:
        handle.write(payload)
    try:
        # os.link fails when the target exists, which makes it an atomic
        # create-if-absent for a file that already contains its full content.
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(temporary)


def process_alive(pid: int) -> bool:
    """Return False when no process with this pid runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child that its parent has not yet reaped still passes kill(pid, 0)
    # on Linux, so its state in /proc (Z) is checked too.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
