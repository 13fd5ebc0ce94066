"""What the node knows about its syncs: runs in ccsync.history, mode, last sync and last error in ccsync.state.

Stored in the node's database (not in memory) so that `ccsync status`, the panel and a restarted service
all see the same truth, online or offline.
"""

from __future__ import annotations

import contextlib
import time

import psycopg

from . import _db
from .errors import CcsyncError


def _quiet_connect(local_dsn: str) -> psycopg.Connection | None:
    try:
        return psycopg.connect(local_dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error:
        return None


@contextlib.contextmanager
def recorded(local_dsn: str, direction: str):
    """Record one run in ccsync.history; on failure store the error as the node's last error."""
    started = time.monotonic()
    run_id = None
    conn = _quiet_connect(local_dsn)
    if conn is not None:
        try:
            run_id = conn.execute(
                "insert into ccsync.history (direction) values (%s) returning id", (direction,)
            ).fetchone()[0]
        except psycopg.Error:
            conn.close()
            conn = None
    result: dict = {}
    try:
        yield result
    except Exception as exc:
        message = str(exc) if isinstance(exc, CcsyncError) else f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "update ccsync.history set finished_at = now(), seconds = %s, error = %s, changes = %s, "
                    "transactions = %s, conflicts = %s where id = %s",
                    (round(time.monotonic() - started, 3), message, result.get("changes", 0),
                     result.get("transactions", 0), result.get("conflicts", 0), run_id),
                )
                conn.execute("update ccsync.state set last_error = %s, last_error_at = now(), updated_at = now()",
                             (message,))
            conn.close()
        raise
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.execute(
                "update ccsync.history set finished_at = now(), seconds = %s, changes = %s, transactions = %s, "
                "conflicts = %s where id = %s",
                (round(time.monotonic() - started, 3), result.get("changes", 0), result.get("transactions", 0),
                 result.get("conflicts", 0), run_id),
            )
            conn.execute(
                "update ccsync.state set last_sync_at = now(), last_error = null, last_error_at = null, "
                "updated_at = now()"
            )
        conn.close()


def history(local_dsn: str, limit: int = 20) -> list[dict]:
    """The most recent sync runs, newest first."""
    if limit < 1:
        raise CcsyncError("--limit must be at least 1")
    with _db.connect(local_dsn, role="local database") as conn:
        _db.identity(conn)
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
