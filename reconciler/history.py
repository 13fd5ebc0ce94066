"""Sync history: one row per run or offline period in the node's ccsync.history; the last sync and error in ccsync.state.

Stored in the node's database (not in memory) so that `ccsync history`, the panel and a restarted service all
see the same truth, online or offline. Routine runs are folded: a push or pull that moved nothing and failed in
nothing leaves no row, and a successful push or pull without conflicts that follows the previous run of the same
direction within FOLD_GAP seconds is added to that run's row (`runs` counts them), so a burst of bookkeeping
pulls is one row and the runs that matter stay in view. An offline period is one row (`offline`, with the
reason's code), finished when the service reaches the cloud again.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
import datetime as dt

import psycopg
from psycopg.rows import class_row

from . import db as _db, reasons
from .errors import CcsyncError
from .reasons import Reason

QUIET = ("push", "pull")  # a push or pull that moved nothing and failed in nothing leaves no history row
FOLD = ("push", "pull")
FOLD_GAP = 60  # seconds: a routine run this soon after the previous one of its direction joins its row
FOLD_SPAN = 900  # seconds: a folded row covers at most this long
KINDS = ("push", "pull", "sync", "init", "login", "offline")
DEFAULT_LIMIT = 20  # the same for `ccsync history` and the panel
MAX_LIMIT = 1000
# errors that are the offline state's business, not a failing sync
CONNECTION = (Reason.CLOUD_UNREACHABLE, Reason.CLOUD_REFUSED, Reason.LOCAL_DOWN, Reason.CONNECTION_LOST)


def _quiet_connect(local_dsn: str) -> psycopg.Connection | None:
    try:
        return _db.connect(local_dsn, role="local database", autocommit=True, connect_timeout=3)
    except CcsyncError:
        return None


@contextlib.contextmanager
def recorded(local_dsn: str, direction: str, *, conn: psycopg.Connection | None = None):
    """Record one run in ccsync.history; on failure store the error, in words, as the node's last error.
    `conn`: an open autocommit connection to the node to write with (else one is opened for the write)."""
    started = time.monotonic()
    result: dict = {}
    error = None
    try:
        yield result
    except BaseException as exc:
        if isinstance(exc, Exception):
            error = reasons.explain(exc)
        raise
    finally:
        _write(local_dsn, conn, direction, started, result, error)


def _write(local_dsn, conn, direction, started, result, error) -> None:
    quiet = error is None and direction in QUIET and not result.get("changes") and not result.get("conflicts")
    own = None
    if conn is None:
        if quiet:
            return  # (a command line run: the next run that moves something clears the failures)
        conn = own = _quiet_connect(local_dsn)
        if conn is None:
            return
    seconds = round(time.monotonic() - started, 3)
    try:
        with contextlib.suppress(psycopg.Error), conn.transaction():
            if error is None:
                conn.execute("update ccsync.state set last_sync_at = now(), last_error = null, last_error_code = null, "
                             "last_error_at = null, failures = 0, updated_at = now()"
                             + (" where failures > 0 or last_error is not null" if quiet else ""))
            else:
                code, text = error
                conn.execute(
                    "update ccsync.state set last_error = %s, last_error_code = %s, last_error_at = now(), "
                    "failures = failures + %s, updated_at = now()",
                    (text, str(code), 0 if code in CONNECTION else 1),
                )
            if quiet or (error is None and _fold(conn, direction, result, seconds)):
                return
            conn.execute(
                "insert into ccsync.history (started_at, finished_at, direction, changes, transactions, conflicts, "
                "seconds, error, reason) values (now() - make_interval(secs => %s), now(), %s, %s, %s, %s, %s, %s, %s)",
                (seconds, direction, result.get("changes", 0), result.get("transactions", 0),
                 result.get("conflicts", 0), seconds, error and error[1], error and str(error[0])),
            )
    finally:
        if own is not None:
            own.close()


def _fold(conn: psycopg.Connection, direction: str, result: dict, seconds: float) -> bool:
    """Add a routine run to the latest row when that row is a recent, clean run of the same direction."""
    if direction not in FOLD or result.get("conflicts"):
        return False
    return conn.execute(
        "update ccsync.history h set runs = runs + 1, changes = changes + %(changes)s, "
        "transactions = transactions + %(transactions)s, seconds = seconds + %(seconds)s, finished_at = now() "
        "where h.id = (select max(id) from ccsync.history) and h.direction = %(direction)s and h.error is null "
        "and h.conflicts = 0 and h.finished_at > now() - make_interval(secs => %(gap)s) "
        "and h.started_at > now() - make_interval(secs => %(span)s)",
        {"changes": result.get("changes", 0), "transactions": result.get("transactions", 0), "seconds": seconds,
         "direction": direction, "gap": FOLD_GAP, "span": FOLD_SPAN},
    ).rowcount == 1


def went_offline(conn: psycopg.Connection, reason: Reason) -> None:
    """The node lost the cloud: an offline period begins (one row, finished by `back_online`)."""
    conn.execute("insert into ccsync.history (direction, reason, error) values ('offline', %s, %s)",
                 (str(reason), reasons.sentence(reason)))


def back_online(conn: psycopg.Connection) -> None:
    """The cloud answers again: the open offline period ends now."""
    conn.execute(
        "update ccsync.history set finished_at = now(), seconds = extract(epoch from now() - started_at) "
        "where direction = 'offline' and finished_at is null"
    )


@dataclass
class Run:
    id: int
    started_at: dt.datetime | str | None
    finished_at: dt.datetime | str | None
    direction: str
    changes: int
    transactions: int
    conflicts: int
    seconds: float | None
    error: str | None
    runs: int
    reason: str | None


def history(conn: psycopg.Connection, limit: int = DEFAULT_LIMIT, *, kind: str | None = None,
            errors_only: bool = False, before: int | None = None) -> list[dict]:
    """The most recent runs in the node's database (`conn`), newest first: `limit` of them, of one `kind` (a direction, or 'offline'), only
    those that failed, and older than the run `before` (an id: the next page).

    Keys: id, started_at, finished_at, direction, changes, transactions, conflicts, seconds, error, runs (how
    many routine runs the row folds), reason (an offline period's or a failure's code)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise CcsyncError(f"--limit must be from 1 to {MAX_LIMIT}")
    if kind is not None and kind not in KINDS:
        raise CcsyncError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    query = ("select id, started_at, finished_at, direction, changes, transactions, conflicts, seconds, error, runs, "
             "reason from ccsync.history where (%(kind)s::text is null or direction = %(kind)s) "
             "and (not %(errors)s or (error is not null and direction <> 'offline')) "
             "and (%(before)s::bigint is null or id < %(before)s) order by id desc limit %(limit)s")
    params = {"kind": kind, "errors": errors_only, "before": before, "limit": limit}
    with conn.cursor(row_factory=class_row(Run)) as cur:
        rows = cur.execute(query, params).fetchall()
    out = []
    for r in rows:
        doc = asdict(r)
        for k in ("started_at", "finished_at"):
            doc[k] = doc[k].isoformat() if doc[k] else None
        out.append(doc)
    return out
