"""Choosing what is captured: track and untrack tables, list them (the SQL side is ccsync.track)."""

from __future__ import annotations

import psycopg

from .. import db as _db
from ..errors import CcsyncError
from ..kinds import POLICIES



def resolve_table(conn: psycopg.Connection, name: str) -> str:
    """Turn a user's table name (`t`, `s.t`, `public."Odd Table"`) into ccsync's qualified form.

    PostgreSQL parses the name (to_regclass), so quoting follows SQL exactly and nothing is formatted
    into a query.
    """
    try:
        row = conn.execute(
            "select format('%%I.%%I', n.nspname, c.relname) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass(%s)",
            (name,),
        ).fetchone()
    except psycopg.errors.InvalidName as exc:
        conn.rollback()
        raise CcsyncError(f"invalid table name {name!r}: {exc.diag.message_primary}") from exc
    if row is None:
        raise CcsyncError(f"unknown table {name!r}: no such table in this database (check the name and schema)")
    return row[0]


def track(dsn: str, tables: list[str], policy: str = "manual") -> list[dict]:
    """Track tables with a conflict policy, all or none (one transaction)."""
    if policy not in POLICIES:
        raise CcsyncError(f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}")
    if not tables:
        raise CcsyncError("no table given: name at least one table to track")
    with _db.connect(dsn) as conn:
        _db.identity(conn)
        return track_conn(conn, tables, policy)


def track_conn(conn: psycopg.Connection, tables: list[str], policy: str = "manual") -> list[dict]:
    """Track tables on an open connection, in one transaction."""
    done = []
    try:
        with conn.transaction():
            for name in tables:
                qualified = resolve_table(conn, name)
                conn.execute("select ccsync.track(%s::regclass, %s)", (qualified, policy))
                done.append({"table": qualified, "policy": policy})
    except psycopg.Error as exc:
        if exc.sqlstate in ("CC002", "CC003", "22023", "CC001"):
            raise CcsyncError(exc.diag.message_primary) from exc
        raise
    return done


def untrack(dsn: str, tables: list[str], *, force: bool = False) -> list[str]:
    """Stop tracking tables; refuses on a node while the table has changes not yet pushed, unless force."""
    if not tables:
        raise CcsyncError("no table given: name at least one table to untrack")
    done = []
    with _db.connect(dsn) as conn:
        self_name = _db.identity(conn)
        with conn.transaction():
            for name in tables:
                qualified = _tracked_name(conn, name)
                pending = conn.execute(
                    "select count(*) from ccsync.journal where table_name = %s and origin = %s and %s <> 'cloud'",
                    (qualified, self_name, self_name),
                ).fetchone()[0]
                if pending and not force:
                    raise CcsyncError(
                        f"{qualified} has {pending} change(s) not yet pushed: run `ccsync push` first, "
                        "or untrack with --force to drop them"
                    )
                if pending:
                    conn.execute(
                        "delete from ccsync.journal where table_name = %s and origin = %s", (qualified, self_name)
                    )
                conn.execute("select ccsync.untrack(%s)", (qualified,))
                done.append(qualified)
    return done


def _tracked_name(conn: psycopg.Connection, name: str) -> str:
    """The tracked entry a user means; works even when the table itself has been dropped."""
    known = {r[0] for r in conn.execute("select table_name from ccsync.tracked")}
    if name in known:
        return name
    if "." not in name and f"public.{name}" in known:
        return f"public.{name}"
    qualified = resolve_table(conn, name)
    if qualified not in known:
        raise CcsyncError(f"{qualified} is not tracked: `ccsync tables` lists the tracked tables")
    return qualified


def tables(dsn: str) -> list[dict]:
    """The tracked tables with their primary key, policy, number of journaled changes and display label."""
    with _db.connect(dsn) as conn:
        _db.identity(conn)
        rows = conn.execute(
            """
            select t.table_name, t.pk_columns, t.policy, t.tracked_at,
                   (select count(*) from ccsync.journal j where j.table_name = t.table_name) as journaled,
                   t.label
              from ccsync.tracked t
             where t.schema_name <> 'ccsync'
             order by t.table_name
            """
        ).fetchall()
    return [
        {"table": table, "primary_key": list(pk), "policy": policy, "tracked_at": tracked_at.isoformat(),
         "journaled": journaled, "label": label}
        for table, pk, policy, tracked_at, journaled, label in rows
    ]


