"""An upgrade from revision 0005 with changes in flight: what a PC had not pushed and what it had not pulled, and
a conflict record, all journaled in the former form (images of to_jsonb in the writer's settings, an update's
changed columns only), reach the other side exactly after both are upgraded."""

from __future__ import annotations

import psycopg
import pytest

import reconciler
from reconciler import conflicts, sync
from reconciler.config import Settings
from tests.fix_sync import as_role, ensure_role, pc_role, on_node

pytestmark = pytest.mark.one_version

TABLE = """
create table visits (
    at    timestamptz,
    room  int,
    note  text,
    f     float8,
    codes int[],
    doc   jsonb,
    raw   json,
    primary key (at, room)
);
insert into visits values ('2024-03-01 12:00+01', 1, 'base', 1.5, '{1}', '{"a": 1}', '{"z": 1,  "a": 2}'),
                          ('2024-03-01 12:00+01', 2, 'base', 2.5, '{2}', '{"b": 2}', '[]'),
                          ('2024-03-01 12:00+01', 3, 'base', 3.5, '{3}', null, null);
"""
FORMER_DIFF = """
select jsonb_object_agg(o.key, o.value)::text, jsonb_object_agg(o.key, %(new)s::jsonb -> o.key)::text
  from jsonb_each(%(old)s::jsonb) as o where o.value::text is distinct from (%(new)s::jsonb -> o.key)::text
"""


def former_image(conn, room: int) -> str:
    """The row as revision 0005 journaled it: to_jsonb in the session's settings, json columns as their text."""
    return conn.execute("select (to_jsonb(v) || jsonb_build_object('raw', v.raw::text))::text from visits v "
                        "where room = %s", (room,)).fetchone()[0]


def former_change(conn, origin: str, statement: str, room: int, op: str) -> None:
    """Apply `statement` to `room` with the capture off, and journal it as revision 0005 would have."""
    before = former_image(conn, room) if op != "I" else None
    conn.execute("alter table visits disable trigger user")
    conn.execute(statement)
    conn.execute("alter table visits enable trigger user")
    after = former_image(conn, room) if op != "D" else None
    pk = conn.execute("select jsonb_build_object('at', %s::jsonb -> 'at', 'room', %s)::text",
                      (before or after, room)).fetchone()[0]
    old, new = (conn.execute(FORMER_DIFF, {"old": before, "new": after}).fetchone() if op == "U"
                else (before, after))
    conn.execute("insert into ccsync.journal (hlc, origin, table_name, op, pk, old, new) "
                 "values (ccsync.hlc_next(), %s, 'public.visits', %s, %s::jsonb, %s::jsonb, %s::jsonb)",
                 (origin, op, pk, old, new))


def test_an_upgrade_from_0005_loses_and_misapplies_nothing_in_flight(databases):
    cloud, node = databases.new("cloud"), databases.new("pc")
    for dsn, name in ((cloud, "cloud"), (node, "pc-1")):
        reconciler.install(dsn, name, revision="0005")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE)
            conn.execute("select ccsync.track('visits'::regclass)")
    with psycopg.connect(cloud, autocommit=True) as c, psycopg.connect(node, autocommit=True) as n:
        # the PC was initialized: positions on both sides
        c.execute("insert into ccsync.nodes (name, push_snapshot) values ('pc-1', %s::pg_snapshot)",
                  (n.execute("select pg_current_snapshot()::text").fetchone()[0],))
        n.execute("update ccsync.state set pull_snapshot = %s::pg_snapshot, initialized_at = now()",
                  (c.execute("select pg_current_snapshot()::text").fetchone()[0],))
        # in flight: the PC's edits in Brussels with few float digits, the cloud's in St. John's
        n.execute("set timezone = 'Europe/Brussels'; set extra_float_digits = 0")
        former_change(n, "pc-1", "update visits set f = 0.25, codes = '{1,2}', doc = '{\"a\": [1, 2.50]}' "
                                 "where room = 1", 1, "U")
        # (not the jsonb document null: the former form could not tell it from SQL NULL)
        former_change(n, "pc-1", "insert into visits values ('2024-03-02 08:30+01', 4, 'new on the PC', -2.5, "
                                 "'{4,5}', '[]', '{\"k\":  true}')", 4, "I")
        c.execute("set timezone = 'America/St_Johns'")
        former_change(c, "cloud", "update visits set note = 'edited on the cloud', codes = '{20,21}' where room = 2",
                      2, "U")
        former_change(c, "cloud", "delete from visits where room = 3", 3, "D")
        # a conflict record of the PC, in the former form too: its edit of room 2's codes against the cloud's,
        # recorded on the cloud and pulled by the PC
        cloud_row = former_image(c, 2)
        record = ("insert into ccsync.conflicts (id, node, table_name, pk, kind, columns, local_row, cloud_row) "
                  "values (%s, 'pc-1', 'public.visits', %s::jsonb, 'update_update', '{codes}', %s::jsonb, %s::jsonb)")
        values = (n.execute("select jsonb_build_object('at', at, 'room', room)::text from visits where room = 2")
                  .fetchone()[0], cloud_row.replace("[20, 21]", "[2, 22]"), cloud_row)
        for conn in (c, n):
            conn.execute("alter table ccsync.conflicts disable trigger user")
            conn.execute(record, (1, *values))
            conn.execute("alter table ccsync.conflicts enable trigger user")

    for dsn, name in ((cloud, "cloud"), (node, "pc-1")):  # the cloud first, then the PC
        assert reconciler.install(dsn, name)["to_revision"] == reconciler.head()
    role = ensure_role(databases.server, pc_role("pc-1"))
    reconciler.pc_add(cloud, "pc-1", role)
    settings = Settings(local=node, cloud=as_role(cloud, role))
    sync.sync(settings)

    rows = "select room, at, note, f, codes::text, doc::text, raw::text from visits order by room"
    with psycopg.connect(cloud, autocommit=True) as c, psycopg.connect(node, autocommit=True) as n:
        assert c.execute(rows).fetchall() == n.execute(rows).fetchall()
        assert [r[:1] + r[2:] for r in c.execute(rows).fetchall()] == [
            (1, "base", 0.25, "{1,2}", '{"a": [1, 2.50]}', '{"z": 1,  "a": 2}'),
            (2, "edited on the cloud", 2.5, "{20,21}", '{"b": 2}', "[]"),
            (4, "new on the PC", -2.5, "{4,5}", "[]", '{"k":  true}'),
        ]
        assert n.execute("select count(*) from ccsync.journal").fetchone()[0] == 0
    # the PC's person decides the former conflict: the local row (its array in the former form) is written back
    [c] = on_node(node, conflicts.list_conflicts)
    on_node(node, conflicts.resolve, c["id"], "local", by="Dr Peeters")
    sync.sync(settings)
    with psycopg.connect(cloud, autocommit=True) as conn:
        assert conn.execute("select codes::text from visits where room = 2").fetchone()[0] == "{2,22}"
