"""Progress of long work: a bar with rate and ETA on a terminal, lines in a log, counts in the node's state for the panel."""

from __future__ import annotations

import sys
import time


class Progress:
    """Does nothing; the base of the reporters below."""

    def start(self, what: str, total: int | None, unit: str = "changes") -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


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
        if not self.enabled:
            return
        if self.terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True, file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        else:
            self._lines = _Lines(what, total, unit, self.interval)

    def advance(self, n):
        if self._bar is not None:
            self._bar.update(n)
        elif self._lines is not None:
            self._lines.advance(n)

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
    """Writes done/total into ccsync.progress (at most every half second) so the panel and `status` see it."""

    def __init__(self, local_dsn: str):
        self.local_dsn = local_dsn
        self.what, self.total, self.done, self._last = None, None, 0, 0.0

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        try:
            import psycopg

            with psycopg.connect(self.local_dsn, autocommit=True, connect_timeout=2) as conn:
                conn.execute(
                    "update ccsync.progress set what = %s, done = %s, total = %s, updated_at = now()",
                    (self.what, self.done if self.what else None, self.total),
                )
        except Exception:  # progress is a courtesy: never let it break a sync
            pass

    def start(self, what, total, unit="changes"):
        self.what, self.total, self.done = what, total, 0
        self._write(force=True)

    def advance(self, n):
        self.done += n
        self._write()

    def finish(self):
        self.what, self.total, self.done = None, None, 0
        self._write(force=True)
