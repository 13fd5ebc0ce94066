"""Initial sync (`ccsync init`): copy every tracked table from one consistent cloud snapshot with COPY.

Each table is copied in its own node transaction together with the snapshot it was copied at
(ccsync.init_progress), so an interrupted init resumes with the tables not yet copied. The pull position
starts at the earliest copy snapshot; the entries of a table copied later are skipped when its own copy
snapshot already holds them, so no change is lost or applied twice.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from psycopg import sql
from psycopg.rows import class_row

from . import apply as _apply, ddl as _ddl, journal as _journal
from ..schema import track as capture
from .sides import Sides, check_drift, register, tracked_tables
from .tablesql import Table
from .faults import checkpoint
from ..db import pending_push
from ..errors import CcsyncError
from ..progress import Progress


class Tracked(NamedTuple):
    """A table the cloud tracks, as ccsync.tracked lists it."""

    table_name: str  # as the journal names it
    schema: str
    rel: str
    policy: str


def run(sides: Sides, *, force: bool = False, progress: Progress | None = None) -> dict:
    node, cloud, name = sides.node, sides.cloud, sides.name
    progress = progress or Progress()
    started = time.monotonic()
    pending = pending_push(node, name)
    if pending and not force:
        raise CcsyncError(
            f"{pending} local change(s) have not been pushed yet: run `ccsync push` first, "
            "or `ccsync init --force` to discard them"
        )
    initialized = node.execute("select initialized_at is not null from ccsync.state").fetchone()[0]
    if initialized and not force:
        raise CcsyncError("this node is already initialized: `ccsync sync` keeps it current (`init --force` copies again)")
    resuming = not force and node.execute("select exists (select 1 from ccsync.init_progress)").fetchone()[0]
    if force:
        _reset(node)

    _register(node, cloud, name)
    cloud_list = cloud.cursor(row_factory=class_row(Tracked)).execute(
        "select table_name, schema_name as schema, rel_name as rel, policy from ccsync.tracked order by table_name"
    ).fetchall()
    created = _create_missing(node, cloud, cloud_list)
    check_drift(tracked_tables(node), tracked_tables(cloud))
    order = _ddl.dependency_order(cloud, [t.table_name for t in cloud_list])
    done = {r[0] for r in node.execute("select table_name from ccsync.init_progress")}
    if not resuming:
        _truncate_all(node, order)
    todo = [t for t in order if t not in done]

    copied_rows = 0
    with cloud.transaction():
        cloud.execute("set transaction isolation level repeatable read, read only")
        snap = cloud.execute("select pg_current_snapshot()::text").fetchone()[0]
        counts = {t: cloud.execute(sql.SQL("select count(*) from {}").format(_ident(t, cloud))).fetchone()[0]
                  for t in todo}
        own = sum(1 for t in todo if t.startswith("ccsync."))
        progress.start(f"init: {len(todo) - own} table(s) and {own} of ccsync's", sum(counts.values()), unit="rows")
        for i, table_name in enumerate(todo, 1):
            t = Table.load(node, table_name)
            copied_rows += _copy_table(cloud, node, t, snap, counts[table_name], progress)
            checkpoint("init.table")
            if hasattr(progress, "set_description"):
                progress.set_description(f"init: {i}/{len(todo)} tables")
    progress.finish()

    first = node.execute("select snapshot::text from ccsync.init_progress order by copied_at, table_name limit 1").fetchone()
    node.execute(
        "update ccsync.state set pull_snapshot = %s::pg_snapshot, pull_window = null, pull_done_upto = null, "
        "initialized_at = now(), updated_at = now()",
        (first[0] if first else snap,),
    )
    return {
        "node": name, "tables": len(order), "copied_tables": len(todo), "copied": todo, "resumed": resuming,
        "created_tables": created, "rows": copied_rows, "seconds": round(time.monotonic() - started, 3),
    }


def _ident(table_name: str, conn) -> sql.Identifier:
    schema, rel = conn.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.oid = to_regclass(%s)",
        (table_name,),
    ).fetchone()
    return sql.Identifier(schema, rel)


def _reset(node) -> None:
    with node.transaction():
        node.execute("delete from ccsync.journal")
        node.execute("delete from ccsync.init_progress")
        node.execute("delete from ccsync.refresh")
        node.execute(
            "update ccsync.state set pull_snapshot = null, pull_window = null, pull_done_upto = null, "
            "initialized_at = null"
        )


def _register(node, cloud, name) -> None:
    """Register the node; its push position starts now (its journal holds nothing to push)."""
    snap = node.execute("select pg_current_snapshot()::text").fetchone()[0]
    register(node, cloud, name, snap)


def _create_missing(node, cloud, cloud_list) -> list[str]:
    created, fks = [], []
    with node.transaction():
        for table_name, schema, rel, policy in cloud_list:
            if schema == "ccsync":
                continue
            exists = node.execute(
                "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relname = %s",
                (schema, rel),
            ).fetchone()
            if not exists:
                fks += _ddl.create_table(cloud, node, schema, rel)
                created.append(table_name)
        for fk in fks:
            node.execute(fk)
    node_tracked = dict(node.execute("select table_name, policy from ccsync.tracked"))
    for table_name, schema, rel, policy in cloud_list:
        if schema != "ccsync" and node_tracked.get(table_name) != policy:
            capture.track_conn(node, [table_name], policy)
    return created


def _truncate_all(node, order) -> None:
    if not order:
        return
    with node.transaction():
        _apply.applying(node, True)
        node.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(_ident(t, node) for t in order)))


def copy_format(t: Table, conn) -> str:
    """Binary, unless an array or composite of a user-defined type (its binary form holds database OIDs)."""
    user_defined = conn.execute(
        """
        select exists (
          select 1 from pg_attribute a join pg_type at on at.oid = a.atttypid
           left join pg_type et on et.oid = at.typelem
           where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
             and ((at.typelem <> 0 and at.typlen = -1 and et.oid >= 16384) or at.typtype = 'c'))
        """,
        (t.name,),
    ).fetchone()[0]
    return "text" if user_defined else "binary"


def _copy_table(cloud, node, t: Table, snap: str, rows: int, progress: Progress) -> int:
    cols = t.insert_columns()
    fmt = sql.SQL(copy_format(t, node))
    size = cloud.execute("select pg_table_size(to_regclass(%s))", (t.name,)).fetchone()[0] or 1
    per_byte = rows / size
    with node.transaction():
        _apply.applying(node, True)
        _replica_role(node)
        # the insert trigger would journal nothing here (origin set), but PostgreSQL would still keep every
        # copied row in its transition table, even with the trigger disabled: it is dropped for the copy
        # and created again by ccsync.track before the commit (readers of the table wait for that commit)
        node.execute(sql.SQL("drop trigger ccsync_capture_insert on {}").format(t.ident))
        node.execute(sql.SQL("delete from {}").format(t.ident))
        moved = [0.0]  # rows the bar has been moved by, estimated from the bytes copied and the table's size

        def advance(nbytes: int) -> None:
            step = nbytes * per_byte
            if moved[0] + step <= rows:
                progress.advance(int(moved[0] + step) - int(moved[0]))
                moved[0] += step

        _journal.relay(cloud, sql.SQL("copy (select {c} from {T}) to stdout (format {f})").format(c=cols, T=t.ident, f=fmt),
                       None, node, sql.SQL("copy {T} ({c}) from stdin (format {f})").format(T=t.ident, c=cols, f=fmt),
                       on_block=advance)
        if node.execute(
            "select ccsync.track(format('%%I.%%I', schema_name, rel_name)::regclass, policy, schema_name = 'ccsync') "
            "from ccsync.tracked where table_name = %s",
            (t.name,),
        ).fetchone() is None:  # rolled back with the copy: the trigger is back as it was
            raise CcsyncError(f"{t.name} is not tracked on this node: run `ccsync init` again")
        # copied from now on: a later re-track on the cloud (newer than this) means a copy again (pull.resync)
        node.execute("update ccsync.tracked set tracked_at = now() where table_name = %s", (t.name,))
        node.execute(
            "insert into ccsync.init_progress (table_name, snapshot, rows) values (%s, %s::pg_snapshot, %s) "
            "on conflict (table_name) do update set snapshot = excluded.snapshot, rows = excluded.rows, copied_at = now()",
            (t.name, snap, rows),
        )
        _sync_sequences(cloud, node, t)
    progress.advance(rows - int(moved[0]))
    return rows


def _replica_role(node) -> None:
    """Skip foreign-key checks while copying (tables copied at different snapshots after a resume), if allowed."""
    try:
        with node.transaction():
            node.execute("set local session_replication_role = replica")
    except Exception:  # not a superuser: tables are copied parents first, which suffices without a resume
        pass


def _sync_sequences(cloud, node, t: Table) -> None:
    """Sequences behind the table's defaults continue where the cloud's are."""
    for (seq,) in node.execute(
        "select distinct format('%%I.%%I', sn.nspname, s.relname) from pg_depend d "
        "join pg_class s on s.oid = d.objid and s.relkind = 'S' join pg_namespace sn on sn.oid = s.relnamespace "
        "where d.refobjid = to_regclass(%s) and d.deptype in ('a', 'i')",
        (t.name,),
    ):
        last = cloud.execute(
            "select last_value from pg_sequences where format('%%I.%%I', schemaname, sequencename) = %s", (seq,)
        ).fetchone()
        if last and last[0] is not None:
            node.execute("select setval(%s::regclass, %s, true)", (seq, last[0]))


def resync(sides: Sides, tables: list[str]) -> int:
    """Copy again the tables the cloud tracked anew after this node copied them (untracked, then tracked:
    what the cloud changed in between was never journaled), each at one cloud snapshot that the pull then
    skips for it, as init does. A table with a local change not pushed yet is not copied over: push first."""
    node, cloud = sides.node, sides.cloud
    for name in tables:
        if node.execute("select exists (select 1 from ccsync.journal where table_name = %s)", (name,)).fetchone()[0]:
            raise CcsyncError(f"{name} was tracked again on the cloud and must be copied again, but this PC has "
                              "changes of it not pushed yet: run `ccsync push` first, then sync again")
    copied = 0
    with cloud.transaction():
        cloud.execute("set transaction isolation level repeatable read, read only")
        snap = cloud.execute("select pg_current_snapshot()::text").fetchone()[0]
        for name in tables:
            rows = cloud.execute(sql.SQL("select count(*) from {}").format(_ident(name, cloud))).fetchone()[0]
            copied += _copy_table(cloud, node, Table.load(node, name), snap, rows, Progress())
    return copied

