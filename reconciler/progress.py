"""Progress of long work: a bar with rate and ETA on a terminal, counts in the node's state for the panel."""

from __future__ import annotations

import sys
import time


class Progress:
    """Does nothing; the base of the reporters below."""

    def start(self, what: str, total: int | None, unit: str = "changes") -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


class Bar(Progress):
    """A tqdm bar on stderr (rows or changes, rate, ETA); quiet when stderr is not a terminal unless forced."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None

    def start(self, what, total, unit="changes"):
        self.finish()
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True, file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)

    def advance(self, n):
        if self._bar is not None:
            self._bar.update(n)

    def set_description(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text)

    def finish(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
