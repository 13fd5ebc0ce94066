"""A PC's delete (or key change) of a parent, applied on the cloud, never removes or unlinks in silence a child row
that PC never saw: the cloud's ON DELETE CASCADE / SET NULL / SET DEFAULT (ON UPDATE SET NULL) would; the PC's
transaction is refused instead, kept whole for a person, and everything converges with the unseen row in place."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from reconciler import conflicts, refusal_reasons, sync
from tests.fix_pg import Databases
from tests.fix_sync import deployment_cloud, deployment_pc, on_node

# key types: one int, one text, and a composite (int, timestamptz) key
KEYS = {
    "i": (["k int"], ["k"], lambda n: (n,), lambda n: (n + 100000,), (0,)),
    "t": (["k text"], ["k"], lambda n: (f"é-{n}",), lambda n: (f"é-{n}-moved",), ("none",)),
    "c": (["k int", "at timestamptz"], ["k", "at"], lambda n: (n, "2026-03-29 02:30:00+02"),
          lambda n: (n, "2026-10-25 02:30:00+01"), (0, "2000-01-01 00:00:00+00")),
}
ACTIONS = {  # the child table of each action, and its foreign key's actions
    "cascade": "on delete cascade on update cascade",
    "setnull": "on delete set null on update set null",
    "setdefault": "on delete set default",
}


def _schema() -> str:
    out = []
    for kt, (defs, cols, _key, _moved, none) in KEYS.items():
        out.append(f"create table parent_{kt} ({', '.join(defs)}, name text, primary key ({', '.join(cols)}));")
        for action, clause in ACTIONS.items():
            child_defs = [d + (" default " + _literal(v) if action == "setdefault" else "") for d, v in zip(defs, none)]
            out.append(f"create table {action}_{kt} (id int primary key, {', '.join(child_defs)}, value text, "
                       f"foreign key ({', '.join(cols)}) references parent_{kt} {clause});")
    return "\n".join(out)


def _literal(v) -> str:
    return str(v) if isinstance(v, int) else f"'{v}'"


TABLES = [f"parent_{kt}" for kt in KEYS] + [f"{a}_{kt}" for kt in KEYS for a in ACTIONS]


class Cascades:
    def __init__(self, server):
        self.databases = Databases(server)
        cloud = deployment_cloud(self.databases, _schema(), TABLES, label="cascloud")
        self.cloud, self.cloud_owner = cloud.app, cloud.owner
        self.pcs = {n: deployment_pc(self.databases, cloud, n, label="cas" + n.replace("-", "")) for n in ("pc-1", "pc-2")}
        for kt, (_defs, cols, _key, _moved, none) in KEYS.items():  # the parent a SET DEFAULT child points to
            self.sql(self.cloud, f"insert into parent_{kt} ({', '.join(cols)}, name) values "
                                 f"({', '.join(['%s'] * len(cols))}, 'nobody')", none)
        self.sync_all()
        self.numbers = itertools.count(1)

    def sql(self, dsn, query, params=None):
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def sync(self, node):
        return sync.sync(self.pcs[node].settings())

    def sync_all(self):
        for _ in range(2):
            for node in self.pcs:
                self.sync(node)

    def rows(self, dsn, table):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("set timezone = 'UTC'")
            return [r[0] for r in conn.execute(f"select r::text from {table} r order by 1")]

    def assert_converged(self):
        for table in TABLES:
            expected = self.rows(self.cloud, table)
            for node, pc in self.pcs.items():
                assert self.rows(pc.local, table) == expected, f"{table} differs on {node}"

    def refused(self) -> list[dict]:
        return [c for c in on_node(self.pcs["pc-1"].local, conflicts.list_conflicts, include_resolved=True)
                if c["kind"] == "refused"]


@pytest.fixture(scope="module")
def practice(pg):
    p = Cascades(pg)
    yield p
    p.databases.drop_all()


def _where(cols) -> str:
    return " and ".join(f"{c} = %s" for c in cols)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(kt=st.sampled_from(sorted(KEYS)), action=st.sampled_from(sorted(ACTIONS)),
       change=st.sampled_from(["delete", "rekey"]), writer=st.sampled_from(["cloud", "pc-2"]),
       unseen=st.sampled_from(["insert", "update", "none"]), other=st.booleans())
def test_a_child_row_the_pc_never_saw_is_never_removed_or_unlinked_in_silence(practice, kt, action, change, writer,
                                                                            unseen, other):
    p = practice
    if change == "rekey" and action == "setdefault":
        change = "delete"  # its foreign key has no update action: the PC's own database refuses the key change
    _defs, cols, key, moved, _none = KEYS[kt]
    n = next(p.numbers)
    parent, child = f"parent_{kt}", f"{action}_{kt}"
    seen_id, unseen_id = 2 * n, 2 * n + 1
    collist, marks = ", ".join(cols), ", ".join(["%s"] * len(cols))
    p.sql(p.cloud, f"insert into {parent} ({collist}, name) values ({marks}, 'Anna')", key(n))
    p.sql(p.cloud, f"insert into {child} (id, {collist}, value) values (%s, {marks}, 'seen')", (seen_id, *key(n)))
    p.sync_all()
    # written after pc-1's last pull, on the cloud or by pc-2 (pushed)
    at = p.cloud if writer == "cloud" else p.pcs["pc-2"].app
    if unseen == "insert":
        p.sql(at, f"insert into {child} (id, {collist}, value) values (%s, {marks}, 'unseen')", (unseen_id, *key(n)))
    elif unseen == "update":
        p.sql(at, f"update {child} set value = 'unseen' where id = %s", (seen_id,))
    if writer == "pc-2":
        p.sync("pc-2")
    before = len(p.refused())
    with psycopg.connect(p.pcs["pc-1"].app) as conn:  # one transaction of the PC's application
        if other:
            conn.execute(f"insert into {parent} ({collist}, name) values ({marks}, 'other')", key(n + 500000))
        if change == "delete":
            conn.execute(f"delete from {parent} where {_where(cols)}", key(n))
        else:
            conn.execute(f"update {parent} set ({collist}) = row({marks}) where {_where(cols)}", moved(n) + key(n))
    p.sync("pc-1")
    p.sync_all()
    p.assert_converged()

    # a cascaded key change keeps every value; SET NULL / SET DEFAULT of a row the PC saw (linked to this parent)
    # keeps the other columns' later edits
    harmless = unseen == "none" or (change == "rekey" and action == "cascade") or (unseen == "update" and action != "cascade")
    values = p.rows(p.cloud, child)
    if harmless:
        assert len(p.refused()) == before
        present = p.sql(p.cloud, f"select count(*) from {parent} where {_where(cols)}", key(n))[0][0]
        assert present == 0  # applied: deleted, or moved to its new key
        if unseen != "none" and not (change == "delete" and action == "cascade"):
            assert any("unseen" in v for v in values)
        return
    # refused whole: the parent, the unseen row and the PC's other row of the same transaction
    [record] = p.refused()[before:]
    assert record["node"] == "pc-1" and record["status"] == "open"
    # stored as a code with names, never a value; worded in English by refusal_reasons
    stored = p.sql(p.pcs["pc-1"].local, "select reason from ccsync.conflicts where id = %s", (record["id"],))[0][0]
    code = "cascade_removed" if action == "cascade" and change == "delete" else "cascade_unlinked"
    assert refusal_reasons.parse(stored) == {"code": code, "op": "D" if change == "delete" else "U",
                                             "subject": f"public.{parent}", "child": f"public.{child}"}
    assert "unseen" not in stored and "Anna" not in stored
    said = refusal_reasons.english(stored)
    assert record["reason"] == said and said.startswith("the cloud refused this PC's ") and "had not seen" in said
    assert f"public.{child}" in said and f"public.{parent}" in said
    assert record["changes"][0]["table"] == f"public.{parent}"
    assert p.sql(p.cloud, f"select name from {parent} where {_where(cols)}", key(n)) == [("Anna",)]
    assert p.sql(p.cloud, f"select count(*) from {parent} where name = 'other'")[0][0] == 0
    kept = p.sql(p.cloud, f"select value from {child} where id in (%s, %s) order by id", (seen_id, unseen_id))
    assert ("unseen",) in kept and len(kept) == (2 if unseen == "insert" else 1)


def test_a_person_applies_the_refused_delete_again_once_the_pc_has_seen_the_rows(practice):
    p = practice
    n = next(p.numbers) + 900000
    p.sql(p.cloud, "insert into parent_i (k, name) values (%s, 'Anna')", (n,))
    p.sync_all()
    p.sql(p.cloud, "insert into cascade_i (id, k, value) values (%s, %s, 'unseen')", (n, n))
    p.sql(p.pcs["pc-1"].app, "delete from parent_i where k = %s", (n,))
    p.sync("pc-1")
    [record] = [r for r in p.refused() if r["status"] == "open" and r["changes"][0]["pk"] == {"k": n}]
    p.sync_all()
    assert p.sql(p.pcs["pc-1"].local, "select value from cascade_i where k = %s", (n,)) == [("unseen",)]
    on_node(p.pcs["pc-1"].local, conflicts.resolve, record["id"], "apply-again", by="Dr Peeters")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select count(*) from parent_i where k = %s", (n,)) == [(0,)]
    assert p.sql(p.cloud, "select count(*) from cascade_i where k = %s", (n,)) == [(0,)]  # seen, then removed
