"""The PCs seen from the cloud: which are registered, how far each has pulled, which hold back the journal's
pruning, and retiring one (`ccsync nodes list` and `ccsync nodes remove`, run with the cloud's owner)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from . import clock, db as _db
from .engine.housekeeping import RETENTION_SECONDS
from .errors import CcsyncError, NotTheCloud


@dataclass
class Node:
    """One registered PC. changes_behind and holds_back_pruning are as of the PC's last report (its last pull)."""

    name: str
    role: str | None  # the login role its reconciler reaches the cloud with (`ccsync pc add`); None: not given
    registered_at: datetime
    last_push_at: datetime | None
    last_pull_at: datetime | None
    changes_behind: int | None  # cloud changes for this PC it has not pulled; None: it never reported a pull
    holds_back_pruning: bool  # journal entries past the retention period stay because this PC has not pulled them

    def as_json(self) -> dict:
        doc = asdict(self)
        for key in ("registered_at", "last_push_at", "last_pull_at"):
            doc[key] = doc[key].isoformat() if doc[key] is not None else None
        return doc


_LIST = """
    with cut as (
        select ((extract(epoch from now() - make_interval(secs => %(retention)s)) * 1000)::bigint << %(bits)s) as normal
    )
    select n.name, n.role::text, n.registered_at, n.last_push_at, n.last_pull_at,
           case when n.pulled_snapshot is not null then
               (select count(*) from ccsync.journal j
                 where not pg_visible_in_snapshot(j.txid, n.pulled_snapshot)
                   and j.origin <> n.name and (j.target is null or j.target = n.name))
           end as changes_behind,
           n.push_snapshot is not null and exists (select 1 from ccsync.journal j, cut
                    where j.hlc < cut.normal
                      and (n.pulled_snapshot is null or j.txid >= pg_snapshot_xmin(n.pulled_snapshot)))
               as holds_back_pruning
      from ccsync.nodes n
     order by n.name
"""


def _open_cloud(dsn: str) -> psycopg.Connection:
    """The cloud's database as every command opens it (db.open_cloud); a PC's database refused in this command's words."""
    try:
        return _db.open_cloud(dsn)
    except NotTheCloud as exc:
        raise CcsyncError(f"this database is the PC {exc.name!r}: `ccsync nodes` runs on the cloud's database "
                          "(--dsn, connected as its owner)") from None


def list_nodes(cloud_dsn: str) -> list[Node]:
    """Every PC registered on the cloud, by name."""
    with _open_cloud(cloud_dsn) as conn, conn.cursor(row_factory=class_row(Node)) as cur:
        return cur.execute(_LIST, {"retention": RETENTION_SECONDS, "bits": clock.COUNTER_BITS}).fetchall()


def remove(cloud_dsn: str, name: str) -> Node:
    """Retire a PC: it is no longer registered, so the cloud's journal is pruned without waiting for it.

    Its conflicts stay (a person may still decide them); a PC removed by mistake registers again with
    `ccsync init --force`."""
    with _open_cloud(cloud_dsn) as conn:
        with conn.transaction():
            node = next((n for n in _locked(conn) if n.name == name), None)
            if node is None:
                known = [r[0] for r in conn.execute("select name from ccsync.nodes order by name")]
                raise CcsyncError(f"no PC named {name!r} is registered on this cloud"
                                  + (f" (registered: {', '.join(known)})" if known else " (none is)"))
            conn.execute("select ccsync.revoke_pc(role) from ccsync.nodes where name = %s and role is not null", (name,))
            conn.execute("delete from ccsync.nodes where name = %s", (name,))
    return node


def _locked(conn: psycopg.Connection) -> list[Node]:
    conn.execute("lock table ccsync.nodes in share row exclusive mode")  # no init registers meanwhile
    with conn.cursor(row_factory=class_row(Node)) as cur:
        return cur.execute(_LIST, {"retention": RETENTION_SECONDS, "bits": clock.COUNTER_BITS}).fetchall()


def registered(conn: psycopg.Connection) -> list[str]:
    """The names of the PCs registered on this cloud database (empty on a PC's database)."""
    if conn.execute("select to_regclass('ccsync.nodes')").fetchone()[0] is None:
        return []
    return [r[0] for r in conn.execute("select name from ccsync.nodes order by name")]


def unregister(cloud_dsn: str, name: str) -> bool:
    """A PC whose ccsync is uninstalled leaves the cloud's register (True when it was registered): ccsync.node_leave,
    for the node of the connected role (the PC's own)."""
    with _db.open_cloud(cloud_dsn, node=name) as conn:
        return conn.execute("select ccsync.node_leave()").fetchone()[0]
