"""Applying a staged chunk on the target: set-wise statements, one per step, in order.

A step is a run of consecutive changes of one table and one operation in which no row repeats, so one
set-based statement applies it exactly as the source did one by one. On the cloud (push) each statement
applies only the changes whose base still holds; the rest are conflicts, handled one by one. On a node
(pull) the rows that carry a local change not yet pushed are skipped and remembered for a refresh.
"""

from __future__ import annotations

import json
from decimal import Decimal
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .journal import Step
from .tablesql import Table


@dataclass
class Leftover:
    """A staged change the set statement did not apply; jsonb values as their exact text."""

    seq: int
    op: str
    pk: str
    old: str | None
    new: str | None
    hlc: int
    cloud_row: str | None
    columns: list[str]


def _stage_from() -> sql.SQL:
    return sql.SQL("from ccsync_stage s")


class _Partial(Exception):
    """A fast statement applied fewer changes than its step holds."""


def applying(conn: psycopg.Connection, on: bool) -> None:
    """Mark what this node's session applies next as changes pulled from the cloud: the capture triggers do not
    journal them (no echo), because the session's role is one of the node's apply roles (ccsync.apply_roles).
    Anybody else who sets it is journaled as usual; on the cloud nothing is ever skipped."""
    conn.execute("select set_config('ccsync.apply', %s, true)", ("on" if on else "",))


def fast_step(conn: psycopg.Connection, t: Table, step: Step, *, push: bool) -> bool:
    """Apply a whole step in one statement. On the cloud (push) it must apply every change exactly on its base,
    or it is rolled back (to a savepoint) and False returned: the step then goes the careful way, change by
    change where needed; the cloud's capture triggers journal what it applied, with the node as origin."""
    q = {"U": _fast_update, "I": _fast_insert, "D": _fast_delete}[step.op](t, step, push)
    if q is None:
        return False
    if not push:  # a node: the chunk is applied as pulled; rows with a pending local change are skipped
        conn.execute(q, {"step": step.number})
        return True
    try:
        with conn.transaction():
            if conn.execute(q, {"step": step.number}).rowcount != step.count:
                raise _Partial
    except (_Partial, psycopg.errors.IntegrityError):
        return False
    return True


def _fast_update(t: Table, step: Step, push: bool) -> sql.Composed | None:
    cols = [c for c in t.writable if c.name in (step.columns or ())]
    if not cols:
        return None
    sets = sql.SQL(", ").join(
        sql.SQL("{c} = {v}").format(c=sql.Identifier(c.name), v=t.typed(c, "s.new")) for c in cols
    )
    if push:  # every changed column still holds the node's base value
        cond = sql.SQL(" and ").join(t.same(c, t.tcol(c), t.typed(c, "s.old")) for c in cols)
    else:
        cond = sql.SQL("not s.skipped")
    return sql.SQL("update {T} t set {sets} {frm} where s.step = %(step)s and {match} and {cond}").format(
        T=t.ident, sets=sets, frm=_stage_from(), match=t.key_match(), cond=cond,
    )


def _fast_insert(t: Table, step: Step, push: bool) -> sql.Composed:
    if push:  # a key already there is an insert_insert conflict: the unique index says so, and the step goes slow
        tail = sql.SQL("")
    else:
        tail = sql.SQL("and not s.skipped on conflict ({pk}) do update set {sets}").format(
            pk=t.pk_columns(), sets=t.upsert_set())
    return sql.SQL("insert into {T} ({cols}) select {vals} {frm} where s.step = %(step)s {tail}").format(
        T=t.ident, cols=t.insert_columns(), vals=t.insert_values(), frm=_stage_from(), tail=tail,
    )


def _fast_delete(t: Table, step: Step, push: bool) -> sql.Composed:
    cond = t.matches_base() if push else sql.SQL("not s.skipped")  # push: the cloud's row is the one the node deleted
    return sql.SQL("delete from {T} t using ccsync_stage s where s.step = %(step)s and {match} and {cond}").format(
        T=t.ident, match=t.key_match(), cond=cond)


def _mark_done(returning_seq: sql.Composable) -> sql.Composed:
    # x.step narrows the update to the step's rows through the staging index (seq alone scanned it all)
    return sql.SQL(
        "with a as ({q}) update ccsync_stage x set done = true from a where x.step = %(step)s and x.seq = a.seq"
    ).format(q=returning_seq)


def update_step(conn, t: Table, step: int, *, check_base: bool) -> int:
    cond = t.no_conflict() if check_base else sql.SQL("not s.skipped")
    q = sql.SQL(
        "update {T} t set {sets} {frm} where s.step = %(step)s and {match} and {cond} returning s.seq"
    ).format(T=t.ident, sets=t.set_from_new(), frm=_stage_from(), match=t.key_match(), cond=cond)
    return conn.execute(_mark_done(q), {"step": step}).rowcount


def insert_step(conn, t: Table, step: int, *, upsert: bool) -> int:
    if upsert:
        conflict = sql.SQL("on conflict ({pk}) do update set {sets}").format(pk=t.pk_columns(), sets=t.upsert_set())
        where = sql.SQL("and not s.skipped")
    else:
        conflict = sql.SQL("on conflict ({pk}) do nothing").format(pk=t.pk_columns())
        where = sql.SQL("")
    ins = sql.SQL(
        "insert into {T} ({cols}) select {vals} {frm} where s.step = %(step)s {where} {conflict} returning {pk}"
    ).format(
        T=t.ident, cols=t.insert_columns(), vals=t.insert_values(), frm=_stage_from(), where=where,
        conflict=conflict, pk=t.pk_columns(),
    )
    q = sql.SQL(
        "with a as ({ins}) update ccsync_stage x set done = true from a where x.step = %(step)s and {match}"
    ).format(ins=ins, match=t.key_match("x.pk", "a"))
    return conn.execute(q, {"step": step}).rowcount


def delete_step(conn, t: Table, step: int, *, check_base: bool) -> int:
    cond = t.matches_base() if check_base else sql.SQL("not s.skipped")
    q = sql.SQL(
        "delete from {T} t using ccsync_stage s where s.step = %(step)s and {match} and {cond} returning s.seq"
    ).format(T=t.ident, match=t.key_match(), cond=cond)
    return conn.execute(_mark_done(q), {"step": step}).rowcount


def truncated(conn, step: int) -> bool:
    """Already truncated together with an earlier table of the same statement."""
    return conn.execute("select bool_and(done) from ccsync_stage where step = %s", (step,)).fetchone()[0]


def truncate_step(conn, tables: dict[str, Table], step: int) -> int:
    """A TRUNCATE, together with the other tables one statement truncated (foreign keys need them together)."""
    names = [r[0] for r in conn.execute(
        """
        with me as (select txid, seq from ccsync_stage where step = %(step)s),
             run as (
                 select s.seq, s.table_name, s.op, s.txid,
                        sum(case when s.op <> 'T' or s.txid <> me.txid then 1 else 0 end)
                            over (order by s.seq) as brk
                   from ccsync_stage s, me where s.seq >= me.seq
             )
        select table_name from run where brk = 0 and not exists
            (select 1 from ccsync_stage d where d.seq = run.seq and d.done)
        """,
        {"step": step},
    )]
    targets = [tables[n] for n in names if n in tables]
    conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(t.ident for t in targets)))
    return conn.execute(
        "update ccsync_stage set done = true where op = 'T' and table_name = any(%s) and step >= %s "
        "and txid = (select txid from ccsync_stage where step = %s limit 1)",
        (names, step, step),
    ).rowcount


def leftovers(conn, t: Table, step: int) -> list[Leftover]:
    """The changes of a step that the set statement did not apply, with the target row as it is."""
    q = sql.SQL(
        """
        select s.seq, s.op::text, s.pk, s.old, s.new, s.hlc, case when t.ctid is null then null else {img} end,
               case s.op when 'U' then {cu} when 'D' then {cd} else {ci} end
          from ccsync_stage s
          left join {T} t on {match}
         where s.step = %(step)s and not s.done and not s.skipped
         order by s.seq
        """
    ).format(
        img=t.image(), cu=t.conflict_columns("old", True), cd=t.conflict_columns("old", False),
        ci=t.conflict_columns("new", False), T=t.ident, match=t.key_match(),
    )
    return [Leftover(*r) for r in conn.execute(q, {"step": step})]


def apply_columns(conn, t: Table, seq: int, columns: list[str] | None) -> None:
    """Apply the new values of one staged update (only `columns` when given)."""
    q = sql.SQL("update {T} t set {sets} from ccsync_stage s where s.seq = %(seq)s and {match}").format(
        T=t.ident, sets=t.set_from_new(columns), match=t.key_match(),
    )
    conn.execute(q, {"seq": seq})


def upsert_images(conn, t: Table, images: list) -> None:
    """Insert or overwrite whole rows given as jsonb images (a local row winning, a refresh)."""
    if not images:
        return
    q = sql.SQL(
        "insert into {T} ({cols}) select {vals} from jsonb_array_elements(%(rows)s::jsonb) as s(new) "
        "on conflict ({pk}) do update set {sets}"
    ).format(T=t.ident, cols=t.insert_columns(), vals=t.insert_values(), pk=t.pk_columns(), sets=t.upsert_set())
    conn.execute(q, {"rows": json_array(images)})


def delete_keys(conn, t: Table, keys: list) -> None:
    if not keys:
        return
    q = sql.SQL("delete from {T} t using jsonb_array_elements(%(keys)s::jsonb) as s(pk) where {match}").format(
        T=t.ident, match=t.key_match())
    conn.execute(q, {"keys": json_array(keys)})


def lock_keys(conn, t: Table, keys: list[str]) -> None:
    if not keys:
        return
    q = sql.SQL(
        "select 1 from {T} t where exists (select 1 from jsonb_array_elements(%(keys)s::jsonb) as s(pk) where {match}) "
        "for update of t"
    ).format(T=t.ident, match=t.key_match())
    conn.execute(q, {"keys": json_array(keys)})


def fetch_images(conn, t: Table, keys: list) -> dict[str, dict]:
    """Current row images by primary key: {json text of the pk: image}."""
    if not keys:
        return {}
    q = sql.SQL(
        "select {pkimg}::text, {img} from {T} t "
        "where exists (select 1 from jsonb_array_elements(%(keys)s::jsonb) as s(pk) where {match})"
    ).format(pkimg=t.pk_image(), img=t.image(), T=t.ident, match=t.key_match())
    return {key_of(r[0]): r[1] for r in conn.execute(q, {"keys": json_array(keys)})}


def parse(text: str | None):
    """jsonb text to Python, numbers as Decimal so that nothing is rounded."""
    return None if text is None else json.loads(text, parse_float=Decimal)


def key_of(pk: str) -> str:
    """A canonical text form of a primary key, to match keys read from different places."""
    return json.dumps(parse(pk), sort_keys=True, default=str)


def json_array(items: list[str]) -> str:
    """A JSON array of jsonb texts, passed to SQL as one jsonb parameter (exact: no Python round trip)."""
    return "[" + ",".join(items) + "]"

