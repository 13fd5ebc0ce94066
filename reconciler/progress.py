"""Progress of long work: a bar with rate and ETA on a terminal, lines in a log, counts in the node's state for the panel.

A push or pull reports `start(total)` and, as each chunk of whole transactions commits, `advance(changes)`.
A chunk can be one large transaction that takes its time, so inside it the rows the engine streams (staging
COPY, direct COPY) are reported too, through `relayed(rows)` while the reporter is `active`: each row counts for
half a change (a row is staged, then applied), and the count shown never reaches the total before the chunk
commits. So the progress moves during a sync of any shape.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time

import psycopg

from . import db as _db
from .errors import CcsyncError

_active: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("ccsync_progress", default=None)


class Progress:
    """Counts done, committed and in flight; reports nowhere (the base of the reporters below)."""

    total: int | None = None
    done: int = 0  # committed
    moving: int = 0  # rows streamed inside the chunk in flight

    def start(self, what: str, total: int | None, unit: str = "changes") -> None:
        self.total, self.done, self.moving = total, 0, 0

    def advance(self, n: int) -> None:
        self.done += n
        self.moving = 0
        self.show()

    def rows(self, n: int) -> None:
        self.moving += n
        self.show()

    def shown(self) -> int:
        """Committed changes plus half the rows in flight, below the total until the end."""
        inflight = self.moving // 2
        if self.total is not None:
            inflight = max(0, min(inflight, self.total - self.done - 1))
        return self.done + inflight

    def show(self) -> None: ...

    def finish(self) -> None: ...


@contextlib.contextmanager
def active(progress: Progress | None):
    """Make `progress` the reporter of the rows the engine streams in this context."""
    token = _active.set(progress)
    try:
        yield progress
    finally:
        _active.reset(token)


def relayed(rows: int) -> None:
    """The engine streamed `rows` rows of the chunk in flight (a no-op when nothing reports progress)."""
    progress = _active.get()
    if progress is not None:
        progress.rows(rows)


LINE_INTERVAL = 5.0  # seconds between two progress lines without a terminal


class Bar(Progress):
    """Progress on stderr: a tqdm bar (rate, ETA) on a terminal; without one (systemd, a log file) a line every
    few seconds with the same figures, and a last one if any was written. enabled=False: silent."""

    def __init__(self, enabled: bool | None = None, *, interval: float | None = None):
        self.enabled = True if enabled is None else enabled
        self.terminal = sys.stderr.isatty() or enabled is True
        self.interval = LINE_INTERVAL if interval is None else interval
        self._bar = None
        self._lines: _Lines | None = None

    def start(self, what, total, unit="changes"):
        self.finish()
        super().start(what, total, unit)
        if not self.enabled:
            return
        if self.terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True, file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        else:
            self._lines = _Lines(what, total, unit, self.interval)

    def show(self):
        shown = self.shown()
        if self._bar is not None:
            if shown > self._bar.n:
                self._bar.update(shown - self._bar.n)
        elif self._lines is not None:
            self._lines.advance(max(0, shown - self._lines.done))  # (a line when its interval has passed)

    def set_description(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text)
        elif self._lines is not None:
            self._lines.what = text

    def finish(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._lines is not None:
            self._lines.finish()
            self._lines = None


class _Lines:
    """One progress line at a time on stderr, at most every `interval` seconds (tqdm's figures, no bar)."""

    FORMAT = "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%), {rate_fmt}, {remaining} left"

    def __init__(self, what: str, total: int | None, unit: str, interval: float):
        self.what, self.total, self.unit, self.interval = what, total, unit, interval
        self.done, self.started, self.written = 0, time.monotonic(), 0
        self.last = self.started

    def line(self) -> str:
        from tqdm import tqdm

        elapsed = time.monotonic() - self.started
        if not self.total:
            return f"{self.what}: {self.done} {self.unit} in {elapsed:.0f} s"
        return tqdm.format_meter(min(self.done, self.total), self.total, elapsed, prefix=self.what,
                                 unit=f" {self.unit}", unit_scale=self.total >= 10_000, bar_format=self.FORMAT)

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.write()

    def write(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)
        self.written += 1

    def finish(self) -> None:
        if self.written:
            self.write()


class Stored(Progress):
    """Writes what/done/total into ccsync.progress (at most every half second) so the panel and `status` see it.

    `min_total`: work smaller than this is not reported at all (the service's online syncs of a few changes
    write nothing; a large transaction makes the light blink). `conn`: an open autocommit connection to the node
    to write with (the service's own, kept open), else one is opened when there is something to write."""

    INTERVAL = 0.5

    def __init__(self, local_dsn: str, *, min_total: int = 0, conn: psycopg.Connection | None = None):
        self.local_dsn = local_dsn
        self.min_total = min_total
        self.what = None
        self._last = 0.0
        self._given = conn
        self._conn: psycopg.Connection | None = conn
        self._written = False

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.INTERVAL:
            return
        self._last = now
        try:  # progress is a courtesy: never let it break a sync
            if self._conn is None or self._conn.closed:
                self._conn = _db.connect(self.local_dsn, role="local database", autocommit=True, connect_timeout=2,
                                         application_name="ccsync progress")
            self._conn.execute(
                "update ccsync.progress set what = %s, done = %s, total = %s, updated_at = now()",
                (self.what, self.shown() if self.what else None, self.total if self.what else None),
            )
            self._written = self.what is not None
        except (psycopg.Error, CcsyncError):
            self._close()

    def start(self, what, total, unit="changes"):
        super().start(what, total, unit)
        self.what = what if (total or 0) >= self.min_total else None
        if self.what is not None or self._written:
            self._write(force=True)

    def show(self):
        if self.what is not None:
            self._write()

    def finish(self):
        self.what = None
        self.total, self.done, self.moving = None, 0, 0
        if self._written or not self.min_total:
            self._write(force=True)
        self._close()

    def _close(self) -> None:
        if self._conn is not None and self._conn is not self._given:
            self._conn.close()
        self._conn = self._given if self._given is not None and not self._given.closed else None
