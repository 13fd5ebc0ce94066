"""Sync history: one row per run in the node's ccsync.history; the last sync and last error in ccsync.state.

Stored in the node's database (not in memory) so that `ccsync history`, the panel and a restarted service all
see the same truth, online or offline.
"""

from __future__ import annotations

import contextlib
import time

import psycopg

from . import db as _db
from .errors import CcsyncError


def _quiet_connect(local_dsn: str) -> psycopg.Connection | None:
    try:
        return _db.connect(local_dsn, role="local database", autocommit=True, connect_timeout=3)
    except CcsyncError:
        return None


QUIET = ("push", "pull")  # a push or pull that moved nothing and failed in nothing leaves no history row


@contextlib.contextmanager
def recorded(local_dsn: str, direction: str):
    """Record one run in ccsync.history; on failure store the error as the node's last error."""
    started = time.monotonic()
    result: dict = {}
    error = None
    try:
        yield result
    except BaseException as exc:
        if isinstance(exc, CcsyncError):
            error = str(exc)
        elif isinstance(exc, Exception):
            error = f"{type(exc).__name__}: {_db.one_line(exc)}"
        raise
    finally:
        _write(local_dsn, direction, started, result, error)


def _write(local_dsn, direction, started, result, error) -> None:
    if error is None and direction in QUIET and not result.get("changes") and not result.get("conflicts"):
        return
    conn = _quiet_connect(local_dsn)
    if conn is None:
        return
    seconds = round(time.monotonic() - started, 3)
    with conn, contextlib.suppress(psycopg.Error):
        conn.execute(
            "insert into ccsync.history (started_at, finished_at, direction, changes, transactions, conflicts, "
            "seconds, error) values (now() - make_interval(secs => %s), now(), %s, %s, %s, %s, %s, %s)",
            (seconds, direction, result.get("changes", 0), result.get("transactions", 0),
             result.get("conflicts", 0), seconds, error),
        )
        if error is None:
            conn.execute("update ccsync.state set last_sync_at = now(), last_error = null, last_error_at = null, "
                         "updated_at = now()")
        else:
            conn.execute("update ccsync.state set last_error = %s, last_error_at = now(), updated_at = now()",
                         (error,))


def history(local_dsn: str, limit: int = 20) -> list[dict]:
    """The most recent sync runs, newest first."""
    if limit < 1:
        raise CcsyncError("--limit must be at least 1")
    with _db.open_local(local_dsn) as conn:
        rows = conn.execute(
            "select id, started_at, finished_at, direction, changes, transactions, conflicts, seconds, error "
            "from ccsync.history order by id desc limit %s",
            (limit,),
        ).fetchall()
    keys = ["id", "started_at", "finished_at", "direction", "changes", "transactions", "conflicts", "seconds", "error"]
    out = []
    for r in rows:
        doc = dict(zip(keys, r))
        for k in ("started_at", "finished_at"):
            doc[k] = doc[k].isoformat() if doc[k] else None
        out.append(doc)
    return out
