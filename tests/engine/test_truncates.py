"""A PC removes patients with their children (TRUNCATE, or deletes) while other PCs edit them: no PC stuck.

The other PCs' conflicting edits of the removed rows are read back from the cloud right after their push, before
their pull brings the removal of the children; their syncs must go on, and every PC must end as the cloud, with
each PC's losing write kept in a record (issue 12: no PC stuck for good, no lost write).
"""

import psycopg
import pytest

import reconciler
from reconciler import conflicts
from tests.engine.test_pull_races import _pull_while
from tests.fix_sync import on_node

pytestmark = pytest.mark.one_version  # foreign keys and the engine's order: the same on every PostgreSQL version

# children of patients with every kind of foreign key a practice uses: immediate NO ACTION (encounters, from the
# fixture), deferred with a composite key, RESTRICT, CASCADE, SET NULL
CHILDREN = """
create table notes (
    patient_id int not null,
    at         timestamptz not null,
    body       text,
    primary key (patient_id, at),
    constraint notes_patient foreign key (patient_id) references patients (id) deferrable initially deferred
);
create table letters (id int primary key, patient_id int not null references patients (id) on delete restrict, body text);
create table contacts (id int primary key, patient_id int not null references patients (id) on delete cascade, value text);
create table links (id int primary key, patient_id int references patients (id) on delete set null, value text);
"""
CHILD_TABLES = ["notes", "letters", "contacts", "links", "encounters"]
TABLES = ["patients", *CHILD_TABLES]
SEED = """
insert into patients (id, name, phone) select i, 'p' || i, 's' || i from generate_series(1, 3) i;
insert into encounters (id, patient_id, summary) select i, i, 's' || i from generate_series(1, 3) i;
insert into notes (patient_id, at, body) select i, '2026-03-29 01:30:00+00', 's' || i from generate_series(1, 3) i;
insert into letters (id, patient_id, body) select i, i, 's' || i from generate_series(1, 3) i;
insert into contacts (id, patient_id, value) select i, i, 's' || i from generate_series(1, 3) i;
insert into links (id, patient_id, value) select i, i, 's' || i from generate_series(1, 3) i;
"""


def _practice(make_practice, nodes, policy="manual"):
    p = make_practice(nodes=(), policy=policy)
    p.sql(p.cloud_owner, CHILDREN)
    reconciler.track(p.cloud_owner, CHILD_TABLES[:-1], policy)
    for node in nodes:
        p.add_node(node)
    p.sql(p.cloud, SEED)
    p.sync_all()
    return p


def _kept(p, node: str, value: str) -> bool:
    """The value is in a row of the cloud, or in a record (conflict or refusal)."""
    rows = " ".join(str(r) for t in TABLES for r in p.rows(p.cloud, t))
    records = " ".join(str(c) for c in on_node(p.nodes[node], conflicts.list_conflicts, include_resolved=True))
    return value in rows or value in records


REMOVALS = {
    "truncate, parents listed first": "truncate patients, notes, letters, contacts, links, encounters",
    "truncate, children listed first": "truncate encounters, links, contacts, letters, notes, patients",
    "deletes": "delete from encounters where patient_id in (1, 2); delete from notes where patient_id in (1, 2); "
               "delete from letters where patient_id in (1, 2); delete from patients where id in (1, 2)",
}


@pytest.mark.parametrize("removal, reference", [("truncate, parents listed first", ""),
                                                ("truncate, children listed first", "1"),
                                                ("deletes", "")], ids=["parents-first", "children-first-ref", "deletes"])
def test_a_pc_removing_patients_with_their_children_never_stops_the_other_pcs(make_practice, monkeypatch, removal,
                                                                             reference):
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = _practice(make_practice, ("pc-1", "pc-2", "pc-3"))
    # pc-2 edits patient 1 offline, and patient 2 while its pull runs (the cloud edits that row too)
    p.sql(p.nodes["pc-2"], "update patients set phone = 'pc-2 offline' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 2")
    with psycopg.connect(p.nodes["pc-2"]) as app:
        app.execute("update patients set phone = 'pc-2 while pulling' where id = 2")
        _pull_while(p, "pc-2", app)
    # pc-3 edits a child of patient 1 and adds one (its own pending children of a removed parent)
    p.sql(p.nodes["pc-3"], "update notes set body = 'pc-3 note' where patient_id = 1; "
                           "insert into letters (id, patient_id, body) values (30, 1, 'pc-3 letter')")
    p.sql(p.nodes["pc-1"], REMOVALS[removal])
    p.sync("pc-1")
    for node in ("pc-2", "pc-3", "pc-2", "pc-3"):  # each sync goes through: none stops on its own foreign keys
        p.sync(node)
    p.sync_all()
    p.assert_converged(TABLES)
    for node, value in (("pc-2", "pc-2 offline"), ("pc-2", "pc-2 while pulling"), ("pc-3", "pc-3 note"),
                        ("pc-3", "pc-3 letter")):
        assert _kept(p, node, value), f"{node}'s write {value!r} is nowhere"


def test_a_pcs_truncate_the_cloud_refuses_is_read_back_whole(make_practice):
    """latest-wins: pc-1's TRUNCATE wins on a patient the cloud kept for an encounter it wrote since; that delete
    is refused (the encounter refers to it), so the whole transaction is: pc-1 reads every row of the truncated
    tables back from the cloud, not only the rows the transaction named."""
    p = _practice(make_practice, ("pc-1", "pc-2"), policy="latest-wins")
    p.sql(p.nodes["pc-1"], "truncate patients, notes, letters, contacts, links, encounters")
    p.sql(p.cloud, "insert into encounters (id, patient_id, summary) values (7, 1, 'written on the cloud')")
    result = p.sync("pc-1")
    assert result["pushed"]["refused"] == 1
    p.sync_all()
    p.assert_converged(TABLES)
    assert p.sql(p.cloud, "select count(*) from patients") == [(3,)]
    [r] = [c for c in on_node(p.nodes["pc-1"], conflicts.list_conflicts) if c["kind"] == "refused"]
    assert [c["op"] for c in r["changes"]] == ["T"] * 6
