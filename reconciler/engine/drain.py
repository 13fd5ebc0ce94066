"""Draining a journal into a target, chunk by chunk: the loop push and pull share.

A direction (push: node -> cloud, pull: cloud -> node) says where its position lives and how a staged
chunk is applied; this loop does the rest, the same way for both:

- the position is read (locked) in the target's transaction, a window (since, upto] is fixed once and
  kept in the position while its chunks are applied, so a run that is interrupted resumes inside the
  same window, after the last applied transaction (done_upto), and then goes on with what came after;
- each chunk (whole source transactions) is planned, staged and applied in one target transaction that
  also moves the position: exactly once;
- a chunk the target rejects is planned again with a finer cut (merged, runs, exact); rejected even
  change by change, its source transactions are applied one by one, and one the target refuses is handed to
  the direction (push: kept in a refusal record, the queue moves on; pull: the run ends with one clear line);
- a direction may take a whole window of plain inserts into one table without staging it (push.direct);
  if the target objects, that is rolled back and the window goes the staged way.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import psycopg

from . import journal as _journal
from .faults import checkpoint
from .. import progress as _progress
from ..errors import CcsyncError

CHUNK = int(os.environ.get("CCSYNC_CHUNK", 50_000))  # entries per target transaction (a larger source transaction is never split)


@dataclass
class Position:
    """Where a direction stands: its last applied snapshot (since), the window being applied if a run was
    interrupted inside one, and the highest journal id of that window's last applied transaction."""

    since: str | None
    window: str | None
    done_upto: int | None


class Direction:
    """What push and pull tell the loop. The required steps raise; the optional ones have their defaults."""

    name: str  # "push" or "pull": the checkpoints' and the progress bar's name
    src: psycopg.Connection
    dst: psycopg.Connection
    rejected: str  # how a rejection starts: "the cloud rejected a change"
    net: dict[str, frozenset[str]] | None = None  # the columns whose chains may go as their net change (journal.plan)

    def position(self) -> Position:
        """The position, locked in the target's transaction."""
        raise NotImplementedError

    def window(self, since: str | None, upto: str, done: int) -> _journal.Window:
        raise NotImplementedError

    def close(self, upto: str) -> None:
        """The window is applied: it becomes the position."""
        raise NotImplementedError

    def store(self, last: bool, upto: str, end: int) -> None:
        """A chunk is applied: the position moves in the same transaction."""
        raise NotImplementedError

    def prepare(self, plan: _journal.Plan) -> None:
        """Before the chunk's savepoint, in the target's transaction: take the locks the chunk must hold first."""

    def apply(self, plan: _journal.Plan) -> Counter:
        """Apply the staged chunk on the target (inside its transaction); the counts to report."""
        raise NotImplementedError

    def direct(self, window: _journal.Window, summary: _journal.Summary) -> Counter | None:
        """A whole window of inserts into one table, applied without staging; None: not for this one."""
        return None

    def refuse(self, window: _journal.Window, tx: _journal.Txn, exc: psycopg.Error) -> Counter:
        """The target refused source transaction `tx` (its constraints: `exc`): keep it for a person, or raise."""
        raise CcsyncError(f"{self.rejected} ({exc.diag.message_primary}): the batch stays pending")

    def committed(self, chunk: _journal.Chunk) -> None:
        """After the target's commit (a crash before this only delays it)."""


def drain(d: Direction, *, progress=None, chunk: int = CHUNK, reference: bool = False) -> Counter:
    """Apply the source's journal on the target, from the direction's position on, and return the counts.

    The protocol, as PgQ's next_batch -> get_batch_events -> finish_batch:

    1. In a target transaction, read the position (locked: one run at a time) and fix the window: the one an
       interrupted run left, else (since, the source's current snapshot].
    2. Summarize the window (one scan) when none of it is applied yet, else list its transactions not applied.
       Nothing there: the window becomes the position (`close`); done, or on with what came after a resumed
       window.
    3. Cut the next chunk of whole transactions: the whole window when it fits, else about `chunk` entries.
    4. Apply it in a savepoint: directly (`direct`), else planned, staged and applied (`apply`), cut finer if
       the target rejects a statement, and at the last one transaction at a time, a refused one handed to
       `refuse`. Deferred constraints are checked before the savepoint ends.
    5. Move the position in the same target transaction (`store`) and commit: exactly once.
    6. After the commit, `committed` (push: the node forgets what the cloud now holds); then step 1 again
       until the window's last chunk.

    `reference`: the obviously correct path, every fast path off: one source transaction per target
    transaction, listed and applied change by change (the `exact` cut), never the direct COPY.
    """
    with _progress.active(progress):  # the rows relayed inside a chunk move the progress too
        return _drain(d, progress, chunk, reference)


def _drain(d: Direction, progress, chunk: int, reference: bool) -> Counter:
    if reference:
        chunk = 1  # a chunk holds whole transactions: one each
    totals: Counter = Counter()
    started = resumed = None
    while True:
        with d.dst.transaction():
            pos = d.position()
            if resumed is None:
                resumed = pos.window is not None
            upto = pos.window or _journal.current_snapshot(d.src)
            done = pos.done_upto or 0
            window = d.window(pos.since, upto, done)
            # most windows are one chunk of transactions none of which is applied: no list of them needed
            summary = _journal.summary(d.src, window) if not done else None
            # (and a window of one transaction is one chunk, whatever its size)
            whole = summary is not None and (summary.entries <= chunk or summary.transactions == 1)
            txns = [] if whole else _journal.transactions(d.src, window)
            pending = summary.entries if whole else sum(t.entries for t in txns)
            if progress and not started:
                progress.start(d.name, pending)
            started = True
            if not pending:
                d.close(upto)
                if resumed:
                    resumed = False  # an interrupted run's window is closed; now what came after it
                    continue
                break
            c = _journal.Chunk.whole_window() if whole else _next_chunk(txns, chunk, done)
            counts = _apply_chunk(d, window, c, summary if c.whole else None, reference)
            checkpoint(f"{d.name}.applied")
            d.store(c.last, upto, c.end)
        checkpoint(f"{d.name}.committed")
        d.committed(c)
        totals.update(counts)
        totals["transactions"] += summary.transactions if c.whole else len(c.txns)
        if progress:
            progress.advance(counts["changes"])
        if c.last and resumed:
            resumed = False  # that finished a window an interrupted run left; now what came after it
            continue
        if c.last:
            break
    return totals


def _next_chunk(txns: list[_journal.Txn], limit: int, done: int) -> _journal.Chunk:
    """The next chunk of a window whose unapplied transactions are `txns` (listed, at least one)."""
    batch = _journal.chunks(txns, limit)[0]
    if len(batch) == len(txns) and not done:
        return _journal.Chunk.whole_window(batch)
    return _journal.Chunk.of(batch, last=batch[-1].last_id == txns[-1].last_id)


def _apply_chunk(d: Direction, window: _journal.Window, chunk: _journal.Chunk, summary: _journal.Summary | None,
                 reference: bool = False) -> Counter:
    """Cut as boldly as possible first; if the target rejects a statement, the same chunk again, cut finer; and
    if even the exact cut is rejected, each source transaction alone (`_one_by_one`): the ones the target
    refuses are handed to the direction (`refuse`), the others applied. `summary`: the whole window's, when
    the chunk is the whole window (none of it applied yet)."""
    if summary and summary.inserts_into and not reference:
        try:
            with d.dst.transaction():
                counts = d.direct(window, summary)
                if counts is not None:
                    _check_deferred(d.dst)
                    return counts
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            pass  # rolled back: the staged way below finds out which change it was, and says so
    mode = "exact" if reference else _journal.MODES[0]
    while True:
        plan = _journal.plan(d.src, window, chunk, mode, transactions=summary.transactions if summary else None,
                             net=d.net)
        plan.top_hlc = summary.top_hlc if summary else None
        d.prepare(plan)  # outside the savepoint: held while the chunk is cut finer, or applied one by one
        try:
            with d.dst.transaction():
                _journal.stage(d.src, d.dst, window, chunk, plan)
                checkpoint(f"{d.name}.staged")
                counts = d.apply(plan)
                _check_deferred(d.dst)
                return counts
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError, _journal.NetRefused):
            if plan.mode == "exact":
                return _one_by_one(d, window, chunk)
            mode = _journal.MODES[_journal.MODES.index(plan.mode) + 1]


def _check_deferred(conn: psycopg.Connection) -> None:
    """Check now the deferred constraints of what was applied (inside the savepoint, not at COMMIT)."""
    conn.execute("set constraints all immediate")


def _one_by_one(d: Direction, window: _journal.Window, chunk: _journal.Chunk) -> Counter:
    """Each source transaction of the chunk alone, in order, in its own savepoint: its deferrable constraints
    deferred while it is applied and checked at its end, as at the source's COMMIT. A transaction the target
    refuses is not applied at all (never split) and goes to the direction's `refuse`; the queue moves on."""
    counts: Counter = Counter()
    # (a whole window read without a list is listed now)
    for tx in chunk.txns or _journal.transactions(d.src, window):
        one = _journal.Chunk.of([tx])
        plan = _journal.plan(d.src, window, one, "exact")
        try:
            with d.dst.transaction():
                if _staged(d.dst):  # the previous transaction's changes
                    d.dst.execute("delete from ccsync_stage")
                d.dst.execute("set constraints all deferred")
                _journal.stage(d.src, d.dst, window, one, plan)
                part = d.apply(plan)
                _check_deferred(d.dst)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            part = d.refuse(window, tx, exc)
        counts.update(part)
    return counts


def _staged(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('pg_temp.ccsync_stage') is not null").fetchone()[0]
