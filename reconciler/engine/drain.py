"""Draining a journal into a target, chunk by chunk: the loop push and pull share.

A direction (push: node -> cloud, pull: cloud -> node) says where its position lives and how a staged
chunk is applied; this loop does the rest, the same way for both:

- the position is read (locked) in the target's transaction, a window (since, upto] is fixed once and
  kept in the position while its chunks are applied, so a run that is interrupted resumes inside the
  same window, after the last applied transaction (done_upto), and then goes on with what came after;
- each chunk (whole source transactions) is planned, staged and applied in one target transaction that
  also moves the position: exactly once;
- a chunk the target rejects is planned again with a finer cut (merged, runs, exact); rejected even
  change by change, it stays pending and the run ends with one clear line;
- a direction may take a whole window of plain inserts into one table without staging it (push.direct);
  if the target objects, that is rolled back and the window goes the staged way.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Protocol

import psycopg

from . import journal as _journal
from .faults import checkpoint
from .. import progress as _progress
from ..errors import CcsyncError

CHUNK = int(os.environ.get("CCSYNC_CHUNK", 50_000))  # entries per target transaction (a larger source transaction is never split)


class Direction(Protocol):
    name: str  # "push" or "pull": the checkpoints' and the progress bar's name
    src: psycopg.Connection
    dst: psycopg.Connection
    rejected: str  # how a rejection starts: "the cloud rejected a change"

    def position(self) -> tuple[str | None, str | None, int | None]:
        """(since, window being applied, done_upto), locked in the target's transaction."""

    def window(self, since: str | None, upto: str, done: int) -> _journal.Window: ...

    def close(self, upto: str) -> None:
        """The window is applied: it becomes the position."""

    def store(self, last: bool, upto: str, end: int) -> None:
        """A chunk is applied: the position moves in the same transaction."""

    def apply(self, plan: _journal.Plan) -> Counter:
        """Apply the staged chunk on the target (inside its transaction); the counts to report."""

    # optional: direct(window, summary) -> Counter | None, a whole window of inserts into one table applied
    # without staging (None: not for this one)

    def committed(self, batch: list[tuple[int, int, int]] | None, whole: bool) -> None:
        """After the target's commit (a crash before this only delays it); `whole`: the batch was the window
        (None: not listed)."""


def drain(d: Direction, *, progress=None, chunk: int = CHUNK) -> Counter:
    with _progress.active(progress):  # the rows relayed inside a chunk move the progress too
        return _drain(d, progress, chunk)


def _drain(d: Direction, progress, chunk: int) -> Counter:
    totals: Counter = Counter()
    started = resumed = None
    while True:
        with d.dst.transaction():
            since, window_upto, done = d.position()
            if resumed is None:
                resumed = window_upto is not None
            upto = window_upto or _journal.current_snapshot(d.src)
            window = d.window(since, upto, done or 0)
            # most windows are one chunk of transactions none of which is applied: no list of them needed
            summary = _journal.summary(d.src, window) if not done else None
            entries = summary.entries if summary else None
            # (and a window of one transaction is one chunk, whatever its size)
            txns = None if summary and (entries <= chunk or summary.transactions == 1) \
                else _journal.transactions(d.src, window)
            if progress and not started:
                progress.start(d.name, entries if txns is None else sum(t[2] for t in txns))
            started = True
            if not (entries if txns is None else txns):
                d.close(upto)
                if resumed:
                    resumed = False  # an interrupted run's window is closed; now what came after it
                    continue
                break
            if txns is None:
                batch, whole, last, end = None, True, True, 0
            else:
                batch = _journal.chunks(txns, chunk)[0]
                whole = len(batch) == len(txns) and not done  # one transaction larger than a chunk
                last, end = batch[-1][1] == txns[-1][1], batch[-1][1]
            counts = _apply_chunk(d, window, batch, summary if whole else None)
            checkpoint(f"{d.name}.applied")
            d.store(last, upto, end)
        checkpoint(f"{d.name}.committed")
        d.committed(batch, whole)
        totals.update(counts)
        totals["transactions"] += summary.transactions if batch is None else len(batch)
        if progress:
            progress.advance(counts["changes"])
        if last and resumed:
            resumed = False  # that finished a window an interrupted run left; now what came after it
            continue
        if last:
            break
    return totals


def _apply_chunk(d: Direction, window: _journal.Window, batch: list[tuple[int, int, int]] | None,
                 whole: _journal.Summary | None) -> Counter:
    """`whole`: the chunk is the whole window (none of it applied yet), as summarized."""
    """Cut as boldly as possible first; if the target rejects a statement, the same chunk again, cut finer."""
    direct = getattr(d, "direct", None)
    if whole and whole.inserts_into and direct is not None:
        try:
            with d.dst.transaction():
                counts = direct(window, whole)
                if counts is not None:
                    return counts
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            pass  # rolled back: the staged way below finds out which change it was, and says so
    mode = _journal.MODES[0]
    while True:
        plan = _journal.plan(d.src, window, batch, mode, whole=whole is not None,
                             transactions=whole.transactions if whole else None)
        plan.top_hlc = whole.top_hlc if whole else None
        try:
            with d.dst.transaction():
                _journal.stage(d.src, d.dst, window, batch, plan)
                checkpoint(f"{d.name}.staged")
                return d.apply(plan)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            if plan.mode == "exact" or isinstance(exc, psycopg.errors.DataError):
                detail = f"; {exc.diag.message_detail}" if exc.diag.message_detail else ""
                raise CcsyncError(
                    f"{d.rejected} ({exc.diag.message_primary}{detail}): the batch stays pending; "
                    "fix the data or the constraint, then sync again"
                ) from None
            mode = _journal.MODES[_journal.MODES.index(plan.mode) + 1]
