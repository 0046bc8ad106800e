"""Progress display for long CLI work: a tqdm bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from tqdm import tqdm

__all__ = ["Progress"]

logger = logging.getLogger("kgzarr.cli")

# Seconds between plain log lines when stderr is not a terminal (CI logs,
# batch jobs), so a long run shows life without flooding the log.
_LOG_INTERVAL_S = 10.0


class Progress:
    """Callable ``progress(done, total)`` that library functions report to.

    ``done`` and ``total`` count rows (positions) or files, as ``unit`` says.
    """

    def __init__(self, description: str, unit: str = "rows", *, quiet: bool = False) -> None:
        self._description = description
        self._unit = unit
        self._quiet = quiet
        self._bar: tqdm | None = None
        self._last_log = 0.0
        self._start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self._quiet:
            return
        if sys.stderr.isatty():
            self._update_bar(done, total)
        else:
            self._log_line(done, total)

    def _update_bar(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._description, unit=f" {self._unit}", unit_scale=True, dynamic_ncols=True)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def _log_line(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last_log < _LOG_INTERVAL_S:
            return
        self._last_log = now
        elapsed = max(now - self._start, 1e-9)
        logger.info("%s: %d/%d %s (%.0f %s/s)", self._description, done, total, self._unit, done / elapsed, self._unit)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
