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
from psycopg.rows import class_row

from .journal import Step
from .tablesql import Table
from ..errors import CcsyncError


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


def delete_together(conn, steps: list[tuple[Table, Step]], *, push: bool = False) -> bool:
    """Consecutive delete steps of several tables in one statement: a foreign key not deferred is checked at the end
    of the statement, once every table's rows are gone. A source that removed rows of tables that reference each
    other did it in one statement (no order of one statement per table would do: a PC's TRUNCATE of them on the
    cloud, see truncate_seen_step, or a PC's own statement); applied table after table, each delete was refused by
    the rows of the next table still referring to it. Where the deletes one by one go through, together they delete
    the same rows (on a node a cascade or a SET NULL then finds the rows of the same run already gone).

    On a node (pull) the rows with a pending local change are skipped, as in fast_step. On the cloud (push) every
    change must apply on its base, or the statement is rolled back (to a savepoint) and False returned: the steps
    then go one by one, as before (conflicts, or a refusal)."""
    cond = (lambda t: t.base_holds()) if push else (lambda t: sql.SQL("not s.skipped"))
    parts = [
        sql.SQL("d{n} as (delete from {T} t using ccsync_stage s where s.step = {step} and {match} and {cond} "
                "returning 1)").format(n=sql.Literal(n), T=t.ident, step=sql.Literal(step.number),
                                       match=t.key_match(), cond=cond(t))
        for n, (t, step) in enumerate(steps)]
    q = sql.SQL("with {} select {}").format(
        sql.SQL(", ").join(parts),
        sql.SQL(", ").join(sql.SQL("(select count(*) from d{})").format(sql.Literal(n)) for n in range(len(steps))))
    if not push:
        conn.execute(q)
        return True
    try:
        with conn.transaction():
            if list(conn.execute(q).fetchone()) != [step.count for _, step in steps]:
                raise _Partial
    except (_Partial, psycopg.errors.IntegrityError):
        return False
    return True


def delete_run(steps: list[Step], i: int) -> list[Step]:
    """The delete steps that follow each other from step i on (none when step i is not a delete)."""
    j = i
    while j < len(steps) and steps[j].op == "D":
        j += 1
    return steps[i:j]


def _fast_update(t: Table, step: Step, push: bool) -> sql.Composed | None:
    cols = [c for c in t.writable if c.name in (step.columns or ())]
    if not cols:
        return None
    sets = sql.SQL(", ").join(
        sql.SQL("{c} = {v}").format(c=sql.Identifier(c.name), v=t.typed(c, "s.new")) for c in cols
    )
    if push:  # every changed column still holds the node's base value
        cond = t.base_holds(cols)
    else:
        cond = sql.SQL("not s.skipped")
    return sql.SQL("update {T} t set {sets} {frm} where s.step = %(step)s and {match} and {cond}").format(
        T=t.ident, sets=sets, frm=_stage_from(), match=t.key_match(), cond=cond,
    )


def _fast_insert(t: Table, step: Step, push: bool) -> sql.Composed:
    if push:  # a key already there is an insert_insert conflict: the unique index says so, and the step goes slow
        return sql.SQL("{ins} select {vals} {frm} where s.step = %(step)s").format(
            ins=t.insert_into(), vals=t.insert_values(), frm=_stage_from())
    return t.upsert(_stage_from(), sql.SQL("s.step = %(step)s and not s.skipped"), update=True)


def _fast_delete(t: Table, step: Step, push: bool) -> sql.Composed:
    cond = t.base_holds() if push else sql.SQL("not s.skipped")  # push: the cloud's row is the one the node deleted
    return sql.SQL("delete from {T} t using ccsync_stage s where s.step = %(step)s and {match} and {cond}").format(
        T=t.ident, match=t.key_match(), cond=cond)


def _mark_done(returning_seq: sql.Composable) -> sql.Composed:
    # x.step narrows the update to the step's rows through the staging index (seq alone scanned it all)
    return sql.SQL(
        "with a as ({q}) update ccsync_stage x set done = true from a where x.step = %(step)s and x.seq = a.seq"
    ).format(q=returning_seq)


def update_step(conn, t: Table, step: int, *, check_base: bool) -> int:
    cond = t.base_holds(or_new=True) if check_base else sql.SQL("not s.skipped")
    q = sql.SQL(
        "update {T} t set {sets} {frm} where s.step = %(step)s and {match} and {cond} returning s.seq"
    ).format(T=t.ident, sets=t.set_from_new(), frm=_stage_from(), match=t.key_match(), cond=cond)
    return conn.execute(_mark_done(q), {"step": step}).rowcount


def insert_step(conn, t: Table, step: int) -> int:
    """The inserts of a step whose key the target does not have yet (the others are left: insert_insert)."""
    ins = sql.SQL("{q} returning {pk}").format(q=t.upsert(_stage_from(), sql.SQL("s.step = %(step)s"), update=False),
                                               pk=t.pk_columns())
    q = sql.SQL(
        "with a as ({ins}) update ccsync_stage x set done = true from a where x.step = %(step)s and {match}"
    ).format(ins=ins, match=t.key_match("x.pk", "a"))
    return conn.execute(q, {"step": step}).rowcount


def delete_step(conn, t: Table, step: int, *, check_base: bool) -> int:
    cond = t.base_holds() if check_base else sql.SQL("not s.skipped")
    q = sql.SQL(
        "delete from {T} t using ccsync_stage s where s.step = %(step)s and {match} and {cond} returning s.seq"
    ).format(T=t.ident, match=t.key_match(), cond=cond)
    return conn.execute(_mark_done(q), {"step": step}).rowcount


def check_columns(conn, tables: dict[str, Table], side: str) -> dict[str, Table]:
    """Stop, with one clear line, a staged change that names a column its table no longer has here (renamed
    or dropped while the change waited): applied, its value would be lost without a word. Returns the tables
    to apply the chunk with: where an insert's image lacks a column (added since), with the column defaults
    that such an insert takes."""
    out = dict(tables)
    for (name,) in conn.execute("select distinct table_name from ccsync_stage where op <> 'T'").fetchall():
        t = tables.get(name)
        if t is None:
            continue
        unknown, lacking = conn.execute(
            "select case when exists (select 1 from ccsync_stage s where s.table_name = %(t)s and s.op <> 'T' "
            "                          and (coalesce(s.new, '{}') || coalesce(s.old, '{}')) - %(cols)s::text[] <> '{}') "
            "            then array(select distinct k from ccsync_stage s, "
            "                       jsonb_object_keys(coalesce(s.new, '{}') || coalesce(s.old, '{}')) k "
            "                       where s.table_name = %(t)s and s.op <> 'T' and not k = any(%(cols)s::text[]) order by 1) end, "
            "       exists (select 1 from ccsync_stage s where s.table_name = %(t)s and s.op = 'I' "
            "                and not s.new ?& %(writable)s::text[])",
            {"t": name, "cols": t.column_names, "writable": [c.name for c in t.writable]},
        ).fetchone()
        if unknown:
            raise CcsyncError(
                f"a pending change of {name} names column(s) {', '.join(unknown)} that {side}'s table does not "
                "have (renamed or dropped while the change waited): the batch stays pending; add the column(s) back "
                "until every change is synced, then make the change again"
            )
        if lacking:
            out[name] = t.with_defaults(conn)
    return out


def truncated(conn, step: int) -> bool:
    """Already truncated together with an earlier table of the same statement."""
    return conn.execute("select bool_and(done) from ccsync_stage where step = %s", (step,)).fetchone()[0]


@dataclass
class Truncation:
    """A staged TRUNCATE of one table."""

    seq: int
    table_name: str
    pulled: str | None  # the node's pull position when it truncated (None: journaled before revision 0012)
    hlc: int


def _truncate_run(conn, step: int) -> list[Truncation]:
    """The run of truncates of one source transaction that starts at this step, and no later one (a later
    TRUNCATE of the same table in that transaction comes after the rows inserted in between), those not done
    yet."""
    with conn.cursor(row_factory=class_row(Truncation)) as cur:
        return cur.execute(
            """
            with me as (select txid, seq from ccsync_stage where step = %(step)s),
                 run as (
                     select s.seq, s.table_name, s.op, s.txid, s.old ->> 'pulled' as pulled, s.hlc,
                            sum(case when s.op <> 'T' or s.txid <> me.txid then 1 else 0 end)
                                over (order by s.seq) as brk
                       from ccsync_stage s, me where s.seq >= me.seq
                 )
            select seq, table_name, pulled, hlc from run where brk = 0 and not exists
                (select 1 from ccsync_stage d where d.seq = run.seq and d.done)
            """,
            {"step": step},
        ).fetchall()


def _mark_run_done(conn, run: list[Truncation]) -> int:
    return conn.execute(
        "update ccsync_stage set done = true where seq = any(%s)", ([r.seq for r in run],)
    ).rowcount


def lock_for_truncate(conn, tables: list[Table]) -> None:
    """Take, before anything else of a target transaction, the ACCESS EXCLUSIVE locks its TRUNCATEs need, waiting
    only while holding none of them.

    TRUNCATE locks its tables one by one in the order the statement lists them: holding the first, it waited for an
    application transaction open on the second (a note written under a deferred foreign key), whose COMMIT then
    waited for the first (the deferred check reads the patient): a deadlock, in which PostgreSQL cancelled one of
    the two. Here every lock is tried without waiting; where one is taken, all are let go (a savepoint rolled back),
    and that one alone is waited for, holding none of the others; then all are tried again. So the pull waits for
    the application's transactions, and none of them ever waits for a lock the pull holds while it waits itself."""
    order = sorted(tables, key=lambda t: t.name)
    waited = None
    while True:
        at = None
        try:
            with conn.transaction():  # a savepoint: rolled back, it lets go of the locks taken inside it
                if waited is not None:
                    conn.execute(sql.SQL("lock table {} in access exclusive mode").format(waited.ident))
                for at in order:
                    conn.execute(sql.SQL("lock table {} in access exclusive mode nowait").format(at.ident))
            return
        except psycopg.errors.LockNotAvailable:
            if at is None:  # the wait itself ended (the session's lock_timeout): as TRUNCATE's own wait would
                raise
            waited = at


def truncate_step(conn, tables: dict[str, Table], step: int) -> int:
    """A TRUNCATE, together with the other tables one statement truncated (foreign keys need them together)."""
    run = _truncate_run(conn, step)
    names = list(dict.fromkeys(r.table_name for r in run))
    targets = [tables[n] for n in names if n in tables]
    # the deferred checks of the source transactions applied before it in this target transaction now: a table
    # with pending trigger events cannot be truncated (each of those transactions was whole at its COMMIT)
    conn.execute("set constraints all immediate")
    conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(t.ident for t in targets)))
    return _mark_run_done(conn, run)


@dataclass
class Kept:
    """A row a node's TRUNCATE did not empty on the cloud: the cloud changed it after the node's pull position
    (`had`: the node had an earlier version of it), or a row kept for it references it."""

    table: str
    pk: str
    image: str
    had: bool


_KEEP_DDL = "create temp table if not exists ccsync_keep (table_name text, pk jsonb, had boolean) on commit drop"


def truncate_seen_step(conn, tables: dict[str, Table], step: int, node: str) -> tuple[int, int, list[Kept]]:
    """A TRUNCATE made on a node, applied on the cloud: it empties the rows the node had when it truncated, not
    the rows the cloud wrote after the node's pull position (another PC's new patient, an edit the node never
    saw), nor the rows such a row references (a kept contact keeps its patient). Returns (changes done, the
    truncate's hlc, the rows kept). A TRUNCATE journaled without the node's position (before revision 0012)
    empties the tables."""
    run = _truncate_run(conn, step)
    names = list(dict.fromkeys(r.table_name for r in run))
    targets = [tables[n] for n in names if n in tables]
    pulled, hlc = run[0].pulled, run[0].hlc
    if pulled is None or not targets:
        return truncate_step(conn, tables, step), hlc, []
    conn.execute(_KEEP_DDL)
    conn.execute("delete from ccsync_keep")
    # the cloud's changes the node had not pulled when it truncated (not its own; not a row resent to one node)
    late = sql.SQL(
        "select j.op, j.pk, j.new from ccsync.journal j where j.table_name = {name} and j.origin <> %(node)s "
        "and j.target is null and not pg_visible_in_snapshot(j.txid, %(pulled)s::pg_snapshot)")
    params = {"node": node, "pulled": pulled}
    for t in targets:
        q = sql.SQL(
            "insert into ccsync_keep (table_name, pk, had) "
            "select {name}, k.pk, not exists (select 1 from ({late}) l where l.op = 'I' and l.new @> k.pk) "
            "  from (select {key} as pk from {T} t) k "
            " where exists (select 1 from ({late}) l where l.pk = k.pk or l.new @> k.pk)"
        ).format(name=sql.Literal(t.name), late=late.format(name=sql.Literal(t.name)), key=t.pk_image(), T=t.ident)
        conn.execute(q, params)
    fks = _references(conn, targets)
    while fks:  # a kept row keeps the rows it references (a chain: until nothing more is kept)
        more = 0
        for child, parent, ccols, pcols in fks:
            on = sql.SQL(" and ").join(
                sql.SQL("c.{} = p.{}").format(sql.Identifier(a), sql.Identifier(b)) for a, b in zip(ccols, pcols))
            q = sql.SQL(
                "insert into ccsync_keep (table_name, pk, had) "
                "select distinct {pname}, p.ccsync_pk, true "
                "  from (select {pkey} as ccsync_pk, t.* from {P} t) p join (select {ckey} as ccsync_pk, t.* from {C} t) c "
                "    on {on} "
                " where exists (select 1 from ccsync_keep k where k.table_name = {cname} and k.pk = c.ccsync_pk) "
                "   and not exists (select 1 from ccsync_keep k where k.table_name = {pname} and k.pk = p.ccsync_pk)"
            ).format(pname=sql.Literal(parent.name), pkey=parent.pk_image(), P=parent.ident, C=child.ident,
                     on=on, cname=sql.Literal(child.name), ckey=child.pk_image())
            more += conn.execute(q).rowcount
        if not more:
            break
    # a table's rows before the rows they reference, one statement each: the journal then holds every child's
    # delete before its parent's, the order in which another PC's pull (change by change) can apply them
    order = _children_first(targets, fks)
    for t in order or []:
        conn.execute(sql.SQL("delete from {T} t where not exists (select 1 from ccsync_keep k where k.table_name = {name} "
                             "and k.pk = {key})").format(T=t.ident, name=sql.Literal(t.name), key=t.pk_image()))
    if order is None:
        # tables that reference each other: one statement, the foreign keys checked once every table is emptied
        deletes = [
            sql.SQL("d{n} as (delete from {T} t where not exists (select 1 from ccsync_keep k where k.table_name = {name} "
                    "and k.pk = {key}) returning 1)").format(n=sql.Literal(n), T=t.ident, name=sql.Literal(t.name),
                                                              key=t.pk_image())
            for n, t in enumerate(targets)]
        conn.execute(sql.SQL("with {} select {}").format(
            sql.SQL(", ").join(deletes),
            sql.SQL(" + ").join(sql.SQL("(select count(*) from d{})").format(sql.Literal(n)) for n in range(len(targets)))))
    kept = []
    for t in targets:
        q = sql.SQL("select {name}, k.pk::text, {img}, k.had from ccsync_keep k join {T} t on {match} "
                    "where k.table_name = {name} order by 2").format(
            name=sql.Literal(t.name), img=t.image(), T=t.ident, match=t.key_match("k.pk"))
        kept += [Kept(*r) for r in conn.execute(q)]
    return _mark_run_done(conn, run), hlc, kept


def _children_first(targets: list[Table], fks) -> list[Table] | None:
    """The tables, each after every other one of them that references it; None when some reference each other."""
    left, out = list(targets), []
    while left:
        free = [t for t in left if not any(p is t and c is not t and c in left for c, p, _, _ in fks)]
        if not free:
            return None
        out += free
        left = [t for t in left if t not in free]
    return out


def _references(conn, targets: list[Table]) -> list[tuple[Table, Table, list[str], list[str]]]:
    """The foreign keys between the tables (child, parent, child columns, parent columns)."""
    by_oid = {}
    for t in targets:
        by_oid[conn.execute("select to_regclass(%s)::oid", (t.name,)).fetchone()[0]] = t
    out = []
    for child, parent, ccols, pcols in conn.execute(
        "select c.conrelid, c.confrelid, "
        "       array(select a.attname::text from unnest(c.conkey) with ordinality k(n, o) join pg_attribute a "
        "             on a.attrelid = c.conrelid and a.attnum = k.n order by k.o), "
        "       array(select a.attname::text from unnest(c.confkey) with ordinality k(n, o) join pg_attribute a "
        "             on a.attrelid = c.confrelid and a.attnum = k.n order by k.o) "
        "  from pg_constraint c where c.contype = 'f' and c.conrelid = any(%(oids)s) and c.confrelid = any(%(oids)s)",
        {"oids": list(by_oid)},
    ):
        out.append((by_oid[child], by_oid[parent], ccols, pcols))
    return out


def leftovers(conn, t: Table, step: int) -> list[Leftover]:
    """The changes of a step that the set statement did not apply, with the target row as it is."""
    q = sql.SQL(
        """
        select s.seq, s.op::text as op, s.pk, s.old, s.new, s.hlc,
               case when t.ctid is null then null else {img} end as cloud_row,
               case s.op when 'U' then {cu} when 'D' then {cd} else {ci} end as columns
          from ccsync_stage s
          left join {T} t on {match}
         where s.step = %(step)s and not s.done and not s.skipped
         order by s.seq
        """
    ).format(
        img=t.image(), cu=t.conflict_columns("old", True), cd=t.conflict_columns("old", False),
        ci=t.conflict_columns("new", False), T=t.ident, match=t.key_match(),
    )
    with conn.cursor(row_factory=class_row(Leftover)) as cur:
        return cur.execute(q, {"step": step}).fetchall()


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
    q = t.upsert(sql.SQL("from jsonb_array_elements(%(rows)s::jsonb) as s(new)"), sql.SQL("true"), update=True)
    conn.execute(q, {"rows": json_array(images)})


def rekey_to_image(conn, t: Table, pk: str, image: str) -> None:
    """Overwrite the row keyed `pk` with a whole row image that has another key (an update, so that the
    target's own ON UPDATE CASCADE moves the row's children)."""
    q = sql.SQL(
        "update {T} t set {sets} from (select %(pk)s::jsonb as pk, %(new)s::jsonb as new) s where {match}"
    ).format(T=t.ident, sets=t.set_from_new(), match=t.key_match())
    conn.execute(q, {"pk": pk, "new": image})


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


def moved(cloud, t: Table, key: str) -> tuple[str, str] | None:
    """(new key, image) of the row the cloud keyed `key` and has since given another key, or None.

    A refresh reads the cloud as it is now, beyond the pull's position: a row missing there may have been
    moved to another key by a change the node has not pulled yet; that change will find no row under the old
    key there, so the refresh moves the row itself. A conflict's record sends the node the row under its new key
    for the same reason."""
    for _ in range(100):  # a chain of key changes, newest first at each key
        row = cloud.execute(
            "select (j.pk || (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(d.ch) e "
            "                 where e.key = any(tr.pk_columns)))::text "
            "from ccsync.journal j join ccsync.tracked tr on tr.table_name = j.table_name "
            "cross join lateral (select ccsync.changed(j.old, j.new) as ch) d "
            "where j.table_name = %s and j.pk = %s::jsonb and j.op = 'U' and d.ch ?| tr.pk_columns "
            "order by j.id desc limit 1",
            (t.name, key),
        ).fetchone()
        if row is None:
            return None
        key = row[0]
        image = fetch_images(cloud, t, [key]).get(key_of(key))
        if image is not None:
            return key, image
    return None


def new_key(conn, t: Table, pk: str, new: str | None) -> str:
    """The key of a row after a change whose new values are `new` (the key columns it changed, else `pk`)."""
    if new is None:
        return pk
    return conn.execute(
        "select (%(pk)s::jsonb || (select coalesce(jsonb_object_agg(e.key, e.value), '{}') "
        "                          from jsonb_each(%(new)s::jsonb) e where e.key = any(%(cols)s)))::text",
        {"pk": pk, "new": new, "cols": t.pk}).fetchone()[0]


def all_keys(conn, t: Table) -> list[str]:
    """The keys of every row of the table (what a refused TRUNCATE leaves to read back)."""
    return [r[0] for r in conn.execute(sql.SQL("select {k}::text from {T} t").format(k=t.pk_image(), T=t.ident))]


def fetch_images(conn, t: Table, keys: list) -> dict[str, dict]:
    """Current row images by primary key: {json text of the pk: image}."""
    if not keys:
        return {}
    q = sql.SQL(
        "select {pkimg}::text, {img} from {T} t "
        "where exists (select 1 from jsonb_array_elements(%(keys)s::jsonb) as s(pk) where {match})"
    ).format(pkimg=t.pk_image(), img=t.image(), T=t.ident, match=t.key_match())
    return {key_of(pk): image for pk, image in conn.execute(q, {"keys": json_array(keys)})}


def parse(text: str | None):
    """jsonb text to Python, numbers as Decimal so that nothing is rounded."""
    return None if text is None else json.loads(text, parse_float=Decimal)


def key_of(pk: str) -> str:
    """A canonical text form of a primary key, to match keys read from different places."""
    return json.dumps(parse(pk), sort_keys=True, default=str)


def json_array(items: list[str]) -> str:
    """A JSON array of jsonb texts, passed to SQL as one jsonb parameter (exact: no Python round trip)."""
    return "[" + ",".join(items) + "]"

