"""Refused source transactions: a PC's transaction the cloud's constraints refuse is kept for a person.

A refused transaction is not applied at all (never split). It becomes a record of kind `refused` in
ccsync.conflicts (so the panel and the CLI list, show and decide it like a conflict), holding the
transaction's changes in order and the reason as a code with its parameters
(reconciler/refusal_reasons.py), without a row value (no patient data in an error
text); the PC's rows it touched are read back from the cloud, and the queue moves on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from .. import refusal_reasons as words
from .cascades import Unseen


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
    """Why the cloud refused it, as a stored code with its parameters (reconciler/refusal_reasons.py): table,
    column and constraint names, an SQLSTATE, never a value."""
    if isinstance(exc, Unseen):
        return words.document("cascade_removed" if exc.removed else "cascade_unlinked",
                              op=ops_of(refused).get(exc.parent, "D"), subject=exc.parent, child=exc.child)
    diag = exc.diag
    table = _qualified(cloud, diag.schema_name, diag.table_name) or refused.first_table
    ops = ops_of(refused)
    subject = table if table in ops else refused.first_table
    state = diag.sqlstate or ""
    if state in ("23C01", "23C02"):  # ccsync.decide: its message names records and people only
        return _decision(diag.message_primary or "")
    if state == "23503":
        child, parent = _fk_sides(cloud, diag.constraint_name, diag.schema_name, diag.table_name)
        if child in ops and ops[child] != "D":
            return words.document("parent_missing", op=ops[child], subject=child, parent=parent)
        subject = parent if parent in ops else subject
        return words.document("still_referenced", op=ops.get(subject, ""), subject=subject, child=child)
    about = {"op": ops.get(subject, ""), "subject": subject, "table": table}
    if state == "23505":
        return words.document("unique", **about, columns=_index_columns(cloud, diag.constraint_name, diag.schema_name))
    if state == "23502":
        return words.document("not_null", **about, column=diag.column_name)
    if state == "23514":
        return words.document("check", **about, constraint=diag.constraint_name)
    if state.startswith("22"):
        return words.document("bad_value", **about, sqlstate=state)
    return words.document("constraint", **about, constraint=diag.constraint_name, sqlstate=state)


# the messages of ccsync.decide (sql/functions/ccsync.decide.sql), read back into their parameters
_DECIDED = re.compile(r"record (?P<record>\d+) was already decided \((?P<resolution>.*)\) by (?P<by>.*) "
                      r"at (?P<at>\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC): this decision was not applied")
_UNKNOWN = re.compile(r"record (?P<record>\d+) does not exist on the cloud")
_NOT_CLOSING = re.compile(r"record (?P<record>\d+): a decision can only close it")


def _decision(message: str) -> str:
    for code, pattern in (("already_decided", _DECIDED), ("unknown_record", _UNKNOWN), ("not_closing", _NOT_CLOSING)):
        found = pattern.fullmatch(message)
        if found:
            params = found.groupdict()
            if "at" in params:  # stored as ISO 8601, shown in the practice's zone
                params["at"] = params["at"].replace(" UTC", ":00+00:00").replace(" ", "T")
            return words.document(code, **params)
    return words.document("decision", message=message)


def ops_of(refused: Refused) -> dict[str, str]:
    """Each table's first operation in the transaction."""
    ops: dict[str, str] = {}
    for change in json.loads(refused.changes):
        ops.setdefault(change["table"], change["op"])
    return ops


def truncated(refused: Refused) -> list[str]:
    """The tables the refused transaction truncated."""
    return list(dict.fromkeys(c["table"] for c in json.loads(refused.changes) if c["op"] == "T"))


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
    if row is None:
        return None, None
    child, parent = row
    return child, parent


def _index_columns(cloud, constraint: str | None, schema: str | None) -> str | None:
    row = cloud.execute(
        "select string_agg(a.attname, ', ' order by k.ord) from pg_class i join pg_namespace n on n.oid = i.relnamespace "
        "join pg_index x on x.indexrelid = i.oid cross join lateral unnest(x.indkey::int2[]) with ordinality k(attnum, ord) "
        "join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.attnum "
        "where i.relname = %s and n.nspname = %s",
        (constraint, schema),
    ).fetchone()
    return row[0] if row else None
