"""Opening both sides of a sync: the node's database and the cloud's, checked for what they claim to be."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psycopg

from ..db import open_cloud, open_node
from .tablesql import Table
from ..errors import CcsyncError

__all__ = ["Sides", "open_sides", "sides_of", "open_cloud", "open_node", "register", "register_once", "tracked_tables", "check_drift"]


# (database, table, policy, catalog signature) -> Table. The signature fixes everything a Table holds, so the
# cache is shared by every sync of the process (the service's, the benchmarks' repeated pushes).
_TABLES: dict = {}


@dataclass
class Sides:
    node: psycopg.Connection
    cloud: psycopg.Connection | None
    name: str
    tables: dict = field(default_factory=lambda: _TABLES)
    # the reference path: each source transaction alone, change by change, no fast path (see drain.drain);
    # CCSYNC_REFERENCE=1 selects it for every sync of the process (the differential test compares both)
    reference: bool = field(default_factory=lambda: os.environ.get("CCSYNC_REFERENCE", "") == "1")
    # the steps a connection needs once, done ("registered": ccsync.node_register; "forgotten": what an interrupted
    # push left in the node's journal): the service keeps its connections for hours, and clears this at its
    # safety sync
    once: set = field(default_factory=set)

    def close(self) -> None:
        for conn in (self.node, self.cloud):
            if conn is not None and not conn.closed:
                conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# the checks and plans of a chunk group and sort tens of thousands of journal entries: in memory, not on disk
WORK_MEM = "64MB"


def open_sides(local_dsn: str, cloud_dsn: str | None) -> Sides:
    node, name = open_node(local_dsn)
    try:
        cloud = open_cloud(cloud_dsn, node=name) if cloud_dsn else None
    except CcsyncError:
        node.close()
        raise
    return sides_of(node, cloud, name)


def sides_of(node: psycopg.Connection, cloud: psycopg.Connection | None, name: str) -> Sides:
    """Sides over connections opened by open_node and open_cloud, in the sessions' settings for syncing: WORK_MEM,
    and no JIT (the planner cannot estimate journal images and staged chunks, so a catch-up's statements were costed
    far above jit_above_cost and compiled for about a second in all: Debian's PostgreSQL 15, bench/service.py)."""
    for conn in (node, cloud):
        if conn is not None:
            conn.execute("select set_config('work_mem', %s, false), set_config('jit', 'off', false)", (WORK_MEM,))
    return Sides(node, cloud, name)


def register(node: psycopg.Connection, cloud: psycopg.Connection, name: str, push_snapshot: str | None = None) -> None:
    """Check on the cloud that this installation is the node its role is registered to (a clone is refused with
    one line), binding it the first time; at init, also where its push starts (ccsync.node_register)."""
    install_id = node.execute("select install_id::text from ccsync.identity").fetchone()[0]
    cloud.execute("select ccsync.node_register(%s::uuid, %s, %s::pg_snapshot)", (install_id, name, push_snapshot))


def register_once(sides: Sides) -> None:
    """`register`, once per connection to the cloud (a push or pull of the same sides does not bind again)."""
    if "registered" not in sides.once:
        register(sides.node, sides.cloud, sides.name)
        sides.once.add("registered")


# Each tracked table's columns read through pg_attribute's index (a lateral subquery per table): joined whole, the
# planner took ccsync.tracked for 350 rows (never analyzed) and hashed all of pg_attribute, about 2.4 ms per call
# and four calls per sync. A table dropped since it was tracked has no columns and is left out. The signature holds
# everything Table.load reads that an ALTER can change: the types' names as format_type spells them (the casts of
# the apply; ALTER TYPE ... RENAME keeps the oid) and whether the primary key is deferrable (indimmediate).
_SIGNATURES = """
    select t.table_name, t.policy,
           md5(c.columns || coalesce((select i.indkey::text || i.indimmediate::text from pg_index i
                                       where i.indrelid = to_regclass(t.table_name) and i.indisprimary), ''))
      from ccsync.tracked t
     cross join lateral (
           select string_agg(a.attname || ':' || a.atttypid || ':' || format_type(a.atttypid, a.atttypmod) || ':'
                             || a.attgenerated::text || a.attidentity::text, ',' order by a.attnum) as columns
             from pg_attribute a
            where a.attrelid = to_regclass(t.table_name) and a.attnum > 0 and not a.attisdropped) c
     where c.columns is not null
     order by t.table_name
"""


def tracked_tables(conn: psycopg.Connection, cache: dict | None = None) -> dict[str, Table]:
    """The tracked tables with their catalog details; with a cache, only tables whose columns changed reload."""
    out = {}
    for name, policy, signature in conn.execute(_SIGNATURES):
        key = (conn.info.dbname, conn.info.port, name, policy, signature)
        table = cache.get(key) if cache is not None else None
        if table is None:
            table = Table.load(conn, name, policy)
            if table is None:
                continue
            if cache is not None:
                if len(cache) > 1000:  # tables that changed many times: start again
                    cache.clear()
                cache[key] = table
        out[name] = table
    return out


def check_drift(node_tables: dict[str, Table], cloud_tables: dict[str, Table]) -> None:
    """A tracked table must have the same columns on both sides, or changes would be lost in between."""
    for name, nt in node_tables.items():
        ct = cloud_tables.get(name)
        if ct is None:
            raise CcsyncError(
                f"{name} is tracked on this node but not on the cloud: track it on the cloud too, or untrack it here"
            )
        ncols = {c.name: c.type_name for c in nt.columns}
        ccols = {c.name: c.type_name for c in ct.columns}
        if ncols != ccols:
            only_node = sorted(set(ncols) - set(ccols))
            only_cloud = sorted(set(ccols) - set(ncols))
            typed = sorted(c for c in set(ncols) & set(ccols) if ncols[c] != ccols[c])
            parts = []
            if only_node:
                parts.append(f"only on the node: {', '.join(only_node)}")
            if only_cloud:
                parts.append(f"only on the cloud: {', '.join(only_cloud)}")
            if typed:
                parts.append(f"other type: {', '.join(typed)}")
            raise CcsyncError(
                f"schema drift on {name} ({'; '.join(parts)}): apply the same ALTER TABLE on the cloud and every node"
            )
        if nt.pk != ct.pk:
            raise CcsyncError(f"schema drift on {name}: the primary key differs between the node and the cloud")
