"""Cascades on the cloud under a PC's change: a child row the PC never saw is never removed or unlinked in silence.

A PC's delete of a parent (or change of its key) applied on the cloud fires the cloud's foreign-key actions:
`ON DELETE CASCADE` removes child rows, `SET NULL` / `SET DEFAULT` unlink them. Rows the PC had seen as they are
on the cloud, it changed the same way itself (its own cascade is in its transaction). A child row written on the
cloud, or by another PC, after this PC's last pull (a new contact, an edited one) would be removed or unlinked
by a decision made without it: the PC's transaction is refused instead (kept whole in a refusal record, the
reason in words, its rows read back from the cloud), and a person decides with both in view. `ON UPDATE CASCADE`
moves a child with its parent's new key, every value kept: applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from .journal import Step

# a foreign key's action (pg_constraint.confdeltype / confupdtype) that removes or unlinks child rows
_REMOVES = "c"
_UNLINKS = ("n", "d")


@dataclass
class Reference:
    """A foreign key between tracked tables whose delete or update action changes the child rows."""

    child: str
    parent: str
    columns: list[str]  # the child's referencing columns
    parent_columns: list[str]
    on_delete: str
    on_update: str


@dataclass
class _Touched:
    """A child row the cloud's action removed (or unlinked) in this transaction, unseen by the PC."""

    table_name: str
    removed: bool


class Unseen(psycopg.errors.IntegrityError):
    """A PC's change would remove or unlink, through the cloud's foreign-key actions, rows it never saw."""

    def __init__(self, parent: str, child: str, removed: bool):
        super().__init__(f"the change of {parent} would {'remove' if removed else 'unlink'} rows of {child} "
                         "that this PC had not seen")
        self.parent, self.child, self.removed = parent, child, removed


_REFERENCES = """
select format('%I.%I', cn.nspname, cc.relname) as child, format('%I.%I', pn.nspname, pc.relname) as parent,
       array(select a.attname::text from unnest(k.conkey) with ordinality u(n, o)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o) as columns,
       array(select a.attname::text from unnest(k.confkey) with ordinality u(n, o)
             join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o) as parent_columns,
       k.confdeltype::text as on_delete, k.confupdtype::text as on_update
  from pg_constraint k
  join pg_class cc on cc.oid = k.conrelid join pg_namespace cn on cn.oid = cc.relnamespace
  join pg_class pc on pc.oid = k.confrelid join pg_namespace pn on pn.oid = pc.relnamespace
 where k.contype = 'f' and (k.confdeltype in ('c', 'n', 'd') or k.confupdtype in ('n', 'd'))
"""

# the entries this cloud transaction journaled since `mark` that remove or unlink a child row without a change of
# the PC's chunk to that row made on the cloud's version of it (nor a conflict of the chunk handled on that row)
_UNSEEN = """
select j.table_name, j.op = 'D' as removed
  from ccsync.journal j
 where j.txid = pg_current_xact_id() and j.id > %(mark)s and j.target is null
   and ((j.op = 'D' and j.table_name = any(%(removing)s))
        or (j.op = 'U' and ccsync.changed(j.old, j.new) ?| array(
                select jsonb_array_elements_text(coalesce(%(unlinking)s::jsonb -> j.table_name, '[]')))))
   and not exists (select 1 from ccsync_stage s
                    where s.table_name = j.table_name and s.op = j.op and s.pk = j.pk
                      and j.old @> coalesce(s.old, '{}'))
   and not exists (select 1 from unnest(%(handled_tables)s::text[], %(handled_keys)s::text[]) h(t, k)
                    where h.t = j.table_name and h.k::jsonb = j.pk)
 limit 1
"""


class Watch:
    """The cloud's foreign-key actions that a push's steps may fire, and the check after such a step."""

    def __init__(self, cloud: psycopg.Connection, tables: dict):
        with cloud.cursor(row_factory=class_row(Reference)) as cur:
            refs = cur.execute(_REFERENCES).fetchall()
        self.refs = [r for r in refs if r.child in tables and r.parent in tables]
        self.removing = sorted({r.child for r in self.refs if r.on_delete == _REMOVES})
        unlinking: dict[str, set[str]] = {}
        for r in self.refs:
            if r.on_delete in _UNLINKS or r.on_update in _UNLINKS:
                unlinking.setdefault(r.child, set()).update(r.columns)
        self.unlinking = {k: sorted(v) for k, v in unlinking.items()}

    def fires(self, step: Step) -> bool:
        """Whether applying this step may fire an action that removes or unlinks child rows."""
        if step.op == "D":
            return any(r.parent == step.table and (r.on_delete == _REMOVES or r.on_delete in _UNLINKS)
                       for r in self.refs)
        if step.op == "U":
            return any(r.parent == step.table and r.on_update in _UNLINKS
                       and set(r.parent_columns) & set(step.columns or ()) for r in self.refs)
        return False

    @staticmethod
    def mark(cloud: psycopg.Connection) -> int:
        return cloud.execute("select coalesce(max(id), 0) from ccsync.journal "
                             "where txid = pg_current_xact_id()").fetchone()[0]

    def check(self, cloud: psycopg.Connection, step: Step, mark: int, handled: list[tuple[str, str]]) -> None:
        """Raise Unseen when what was applied since `mark` removed or unlinked a row the PC had not seen."""
        with cloud.cursor(row_factory=class_row(_Touched)) as cur:
            touched = cur.execute(_UNSEEN, {
                "mark": mark, "removing": self.removing, "unlinking": json.dumps(self.unlinking),
                "handled_tables": [t for t, _ in handled], "handled_keys": [k for _, k in handled],
            }).fetchone()
        if touched is not None:
            raise Unseen(step.table, touched.table_name, touched.removed)
