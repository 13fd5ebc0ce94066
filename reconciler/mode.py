"""The node's mode, decided in one place: online, synchronizing or offline, and which database the application uses.

`ccsync status`, the panel's light, `reconciler.service.database_for_app()` and the Sumehr publisher all call
`current()`; none decides on its own. The facts come from the node's database (the stored mode of the running
service, whether a service holds this node's lock) and, when no service runs, from a probe of the cloud.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from . import db

LOCK_KEY = 0x63637372  # one service per node database (session advisory lock)
PROBE_TIMEOUT = 2


def lock_holder(node: psycopg.Connection) -> int | None:
    """The backend pid of the running service of this node, if any."""
    row = node.execute(
        "select pid from pg_locks where locktype = 'advisory' and granted and objid = %s and database = "
        "(select oid from pg_database where datname = current_database())",
        (LOCK_KEY,),
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Mode:
    mode: str  # online, synchronizing, offline
    use: str  # the database the application should use now: cloud or local
    service: bool  # a `ccsync run` serves this node
    reachable: bool | None  # the cloud answered a probe (None: not probed, the service's stored mode was used)


def decide(*, service: bool, stored: str, reachable: bool | None) -> Mode:
    """The rule. With a service running, its stored mode is the truth (it watches the cloud all the time);
    without one, the cloud's answer to a probe decides. The application uses the cloud whenever it is known to
    be reachable and no backlog is being synchronized: never a stale replica while the cloud answers."""
    if service:
        mode = stored
    else:
        mode = "online" if reachable else "offline"
    return Mode(mode, "cloud" if mode == "online" else "local", service, reachable)


def probe(cloud_dsn: str | None, timeout: float = PROBE_TIMEOUT) -> bool:
    """The cloud answers a connection (nothing else is asked of it)."""
    if not cloud_dsn:
        return False
    try:
        db.connect(cloud_dsn, role="cloud database", connect_timeout=max(1, int(timeout))).close()
    except db.CcsyncError:
        return False
    return True


def current(node: psycopg.Connection, cloud_dsn: str | None, *, timeout: float = PROBE_TIMEOUT) -> Mode:
    """The mode of the node whose database `node` is, probing the cloud only when no service runs."""
    service = lock_holder(node) is not None
    stored = node.execute("select mode from ccsync.state").fetchone()[0]
    reachable = None if service else probe(cloud_dsn, timeout)
    return decide(service=service, stored=stored, reachable=reachable)
