"""Refused source transactions: a PC's transaction the cloud's constraints refuse is kept for a person.

A refused transaction is not applied at all (never split). It becomes a record of kind `refused` in
ccsync.conflicts (so the panel and the CLI list, show and decide it like a conflict), holding the
transaction's changes in order and the reason in words, without a row value (no patient data in an error
text); the PC's rows it touched are read back from the cloud, and the queue moves on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


# the words for the operation of the transaction's first change to the table the constraint names
_WHAT = {"I": "new row in", "U": "change to a row of", "D": "deletion of a row of", "T": "emptying of"}


@dataclass
class Refused:
    """A refused source transaction, read from the node's journal."""

    changes: str  # jsonb text: [{table, op, pk, old, new}, ...] in journal order
    tables: list[str]
    first_table: str
    first_pk: str | None
    first_op: str
    top_hlc: int
    keys: list[list[str]]  # (table, key text) of every row it touched, new keys of key changes too


_READ = """
select coalesce(jsonb_agg(jsonb_build_object('table', j.table_name, 'op', j.op::text, 'pk', j.pk, 'old', j.old,
                                             'new', j.new) order by j.id), '[]')::text as changes,
       array_agg(distinct j.table_name) as tables,
       (array_agg(j.table_name order by j.id))[1] as first_table,
       (array_agg(j.pk::text order by j.id))[1] as first_pk,
       (array_agg(j.op::text order by j.id))[1] as first_op,
       max(j.hlc) as top_hlc,
       coalesce(array_agg(array[j.table_name, j.pk::text]) filter (where j.pk is not null), '{}')
       || coalesce(array_agg(array[j.table_name, (j.pk || (select jsonb_object_agg(k, d.ch -> k)
                                                             from unnest(t.pk_columns) k where d.ch ? k))::text])
                    filter (where d.ch ?| t.pk_columns), '{}') as keys
  from ccsync.journal j
  left join ccsync.tracked t on t.table_name = j.table_name
  cross join lateral (select case when j.op = 'U' then ccsync.changed(j.old, j.new) end as ch) d
 where j.txid = %(txid)s::text::xid8 and j.origin = %(node)s
"""


def read(node: psycopg.Connection, txid: int, node_name: str) -> Refused:
    with node.cursor(row_factory=class_row(Refused)) as cur:
        return cur.execute(_READ, {"txid": str(txid), "node": node_name}).fetchone()


def reason(cloud: psycopg.Connection, refused: Refused, exc: psycopg.Error) -> str:
    """Why the cloud refused it, in words: table and constraint names, never a value."""
    diag = exc.diag
    table = _qualified(cloud, diag.schema_name, diag.table_name) or refused.first_table
    ops = {}  # each table's first operation in the transaction
    for change in json.loads(refused.changes):
        ops.setdefault(change["table"], change["op"])
    subject = table if table in ops else refused.first_table
    what = f"the cloud refused this PC's {_WHAT.get(ops.get(subject, ''), 'change to')} {subject}"
    state = diag.sqlstate or ""
    if state in ("23C01", "23C02"):  # ccsync.decide: its message names records and people only
        return f"the cloud refused this PC's decision: {diag.message_primary}"
    if state == "23503":
        child, parent = _fk_sides(cloud, diag.constraint_name, diag.schema_name, diag.table_name)
        if child in ops and ops[child] != "D":
            return (f"the cloud refused this PC's {_WHAT[ops[child]]} {child}: the row of {parent} it refers to "
                    "is not on the cloud (deleted there)")
        subject = parent if parent in ops else subject
        return (f"the cloud refused this PC's {_WHAT.get(ops.get(subject, ''), 'change to')} {subject}: rows of "
                f"{child or 'another table'} on the cloud still refer to it")
    if state == "23505":
        cols = _index_columns(cloud, diag.constraint_name, diag.schema_name)
        return f"{what}: another row of {table} on the cloud already has the same {cols or 'unique value'}"
    if state == "23502":
        return f"{what}: {table}.{diag.column_name} may not be empty on the cloud"
    if state == "23514":
        return f"{what}: it breaks the cloud's check {diag.constraint_name} on {table}"
    if state.startswith("22"):
        return f"{what}: a value does not fit the cloud's column type (SQLSTATE {state})"
    return f"{what}: {diag.constraint_name or 'a constraint'} on {table} refused it (SQLSTATE {state})"


def record(cloud: psycopg.Connection, refused: Refused, why: str) -> None:
    """The refusal record, for the node of the connected role (ccsync.record_refusal), journaled for every node."""
    cloud.execute("select ccsync.record_refusal(%s, %s::jsonb, %s::jsonb, %s, %s)",
                  (refused.first_table, refused.first_pk, refused.changes, why, refused.top_hlc))


def _qualified(cloud, schema: str | None, table: str | None) -> str | None:
    """As the journal names tables: quoted only where SQL needs it."""
    if not table:
        return None
    return cloud.execute("select format('%%I.%%I', %s::text, %s::text)", (schema or "public", table)).fetchone()[0]


def _fk_sides(cloud, constraint: str | None, schema: str | None, table: str | None) -> tuple[str | None, str | None]:
    row = cloud.execute(
        "select format('%%I.%%I', cn.nspname, cc.relname), format('%%I.%%I', pn.nspname, pc.relname) "
        "from pg_constraint k join pg_class cc on cc.oid = k.conrelid join pg_namespace cn on cn.oid = cc.relnamespace "
        "join pg_class pc on pc.oid = k.confrelid join pg_namespace pn on pn.oid = pc.relnamespace "
        "where k.contype = 'f' and k.conname = %s and (cn.nspname = %s or pn.nspname = %s) "
        "and (cc.relname = %s or pc.relname = %s) limit 1",
        (constraint, schema, schema, table, table),
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _index_columns(cloud, constraint: str | None, schema: str | None) -> str | None:
    row = cloud.execute(
        "select string_agg(a.attname, ', ' order by k.ord) from pg_class i join pg_namespace n on n.oid = i.relnamespace "
        "join pg_index x on x.indexrelid = i.oid cross join lateral unnest(x.indkey::int2[]) with ordinality k(attnum, ord) "
        "join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.attnum "
        "where i.relname = %s and n.nspname = %s",
        (constraint, schema),
    ).fetchone()
    return row[0] if row else None
