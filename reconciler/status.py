"""What the node knows about its syncs: runs in ccsync.history, mode, last sync and last error in ccsync.state.

Stored in the node's database (not in memory) so that `ccsync status`, the panel and a restarted service
all see the same truth, online or offline.
"""

from __future__ import annotations

import contextlib
import time

import psycopg

from . import db as _db
from .errors import CcsyncError


def _quiet_connect(local_dsn: str) -> psycopg.Connection | None:
    try:
        return psycopg.connect(local_dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error:
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
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
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


def current(settings, *, probe_timeout: float = 2.0) -> dict:
    """The node's status for people and scripts (`ccsync status --json`, the panel's light).

    Keys: mode, node, pending_push, pending_pull (null while offline), open_conflicts, hub_failures,
    last_sync_at, last_error, use ('cloud' or 'local'), service (a `ccsync run` serves this node),
    mode_since, progress ({what, done, total} while a long sync runs, else null).
    """
    from .service import lock_holder

    local = settings.need_local()
    with _db.connect(local, role="local database") as conn:
        name = _db.identity(conn)
        st = conn.execute(
            "select s.mode, s.mode_since, s.last_sync_at, s.last_error, p.what, p.done, p.total "
            "from ccsync.state s, ccsync.progress p"
        ).fetchone()
        pending_push = conn.execute("select count(*) from ccsync.journal where origin = %s", (name,)).fetchone()[0]
        open_conflicts = conn.execute("select count(*) from ccsync.conflicts where status = 'open'").fetchone()[0]
        hub_failures = _hub_failures(conn, settings)
        serving = lock_holder(conn) is not None
    # with a service running, its stored mode is the truth; without one, reachability decides
    mode = st[0] if serving else "offline"
    pending_pull = None
    if settings.cloud and (serving is False or mode != "offline"):
        pending_pull, reachable = _pending_pull(settings, local, name, probe_timeout)
        if not serving and reachable:
            mode = "online"
    if mode == "offline":
        pending_pull = None
    progress = None
    if st[4]:
        progress = {"what": st[4], "done": st[5], "total": st[6]}
    return {
        "mode": mode, "node": name, "pending_push": pending_push, "pending_pull": pending_pull,
        "open_conflicts": open_conflicts, "hub_failures": hub_failures,
        "last_sync_at": st[2].isoformat() if st[2] else None, "last_error": st[3],
        "use": "cloud" if mode == "online" else "local", "service": serving,
        "mode_since": st[1].isoformat() if st[1] else None, "progress": progress,
    }


def _hub_failures(conn, settings) -> int:
    """Patients whose Sumehr on the HUB is not the latest: those `ccsync sumehr list --failed` lists."""
    from .sumehr.publisher import count_not_up_to_date

    return count_not_up_to_date(conn, settings)


def _pending_pull(settings, local: str, name: str, probe_timeout: float) -> tuple[int | None, bool]:
    from .engine import pull as pull_mod
    from .engine.sides import Sides, open_cloud

    try:
        cloud = open_cloud(settings.cloud, connect_timeout=max(1, int(probe_timeout)))
    except (CcsyncError, psycopg.Error):
        return None, False
    node_conn = _db.connect(local, role="local database", autocommit=True)
    try:
        return pull_mod.pending_count(Sides(node_conn, cloud, name)), True
    except CcsyncError:
        return None, True
    finally:
        node_conn.close()
        cloud.close()
