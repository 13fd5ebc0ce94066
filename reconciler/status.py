"""The node's status for people and scripts: `ccsync status --json` and the panel's light.

The mode comes from the one rule in `reconciler.mode`; this module adds the counts around it.
"""

from __future__ import annotations

import psycopg

from . import db as _db, mode as _mode
from .config import Settings
from .engine import pull as _pull
from .engine.sides import Sides
from .errors import CcsyncError
from .sumehr.publisher import summary as sumehr_summary


def current(settings: Settings, *, probe_timeout: float = 2.0) -> dict:
    """The node's status.

    Keys: mode, node, pending_push, pending_pull (null while offline), open_conflicts, hub_failures (Sumehrs
    not on the HUB for a reason someone must look at; null when Sumehr publication is not configured),
    hub_waiting (Sumehrs waiting for their first try or for the cloud), hub_configured, last_sync_at,
    last_error, use ('cloud' or 'local'), service (a `ccsync run` serves this node), mode_since, progress ({what, done, total} while a long sync runs, else null).
    """
    local = settings.need_local()
    with _db.open_local(local) as conn:
        name = _db.identity(conn)
        now = _mode.current(conn, settings.cloud, timeout=probe_timeout)
        st = conn.execute(
            "select s.mode_since, s.last_sync_at, s.last_error, p.what, p.done, p.total "
            "from ccsync.state s, ccsync.progress p"
        ).fetchone()
        pending_push = conn.execute("select count(*) from ccsync.journal where origin = %s", (name,)).fetchone()[0]
        open_conflicts = conn.execute("select count(*) from ccsync.conflicts where status = 'open'").fetchone()[0]
        hub = sumehr_summary(conn, settings)
    pending_pull = None
    if now.mode != "offline" and settings.cloud:
        pending_pull = _pending_pull(settings, local, name, probe_timeout)
    progress = {"what": st[3], "done": st[4], "total": st[5]} if st[3] else None
    return {
        "mode": now.mode, "node": name, "pending_push": pending_push, "pending_pull": pending_pull,
        "open_conflicts": open_conflicts, "hub_failures": hub["attention"],
        "hub_waiting": hub["waiting"], "hub_configured": hub["configured"],
        "last_sync_at": st[1].isoformat() if st[1] else None, "last_error": st[2],
        "use": now.use, "service": now.service,
        "mode_since": st[0].isoformat() if st[0] else None, "progress": progress,
    }


def _pending_pull(settings: Settings, local: str, name: str, probe_timeout: float) -> int | None:
    try:
        cloud = _db.open_cloud(settings.cloud, connect_timeout=max(1, int(probe_timeout)))
    except (CcsyncError, psycopg.Error):
        return None
    node_conn = _db.connect(local, role="local database", autocommit=True)
    try:
        return _pull.pending_count(Sides(node_conn, cloud, name))
    except CcsyncError:
        return None
    finally:
        node_conn.close()
        cloud.close()
