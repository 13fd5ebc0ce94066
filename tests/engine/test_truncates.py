"""A PC removes patients with their children (TRUNCATE, or deletes) while other PCs edit them: no PC stuck.

The other PCs' conflicting edits of the removed rows are read back from the cloud right after their push, before
their pull brings the removal of the children; their syncs must go on, and every PC must end as the cloud, with
each PC's losing write kept in a record (issue 12: no PC stuck for good, no lost write).
"""

import threading

import hypothesis.strategies as st
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

import reconciler
from reconciler import conflicts
from tests.engine.schemas import NOTES
from tests.engine.test_differential import DATABASES, NODES, POLICIES, Template, World, _rows, _wait_blocked
from tests.engine.test_pull_races import _pull_while
from tests.fix_sync import on_node

pytestmark = pytest.mark.one_version  # foreign keys and the engine's order: the same on every PostgreSQL version

# children of patients with every kind of foreign key a practice uses: immediate NO ACTION (encounters, from the
# fixture), deferred with a composite key, RESTRICT, CASCADE, SET NULL
CHILDREN = NOTES + """create table letters (id int primary key, patient_id int not null references patients (id) on delete restrict, body text);
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


# -- generated: any order of the truncated tables, deletes instead, any policy, edits offline and while pulling -----
DIFF_TABLES = ("patients", "contacts", "notes")  # the differential test's practice: CASCADE and a deferred composite
AT = "2026-03-29 01:30:00+00"
EDITS = st.lists(st.tuples(st.sampled_from(["patient", "note", "contact", "new_note", "new_contact"]),
                           st.integers(1, 3), st.booleans()), min_size=1, max_size=3)


@st.composite
def _removals(draw):
    if draw(st.booleans()):
        return "truncate " + ", ".join(draw(st.permutations(DIFF_TABLES)))
    ids = ", ".join(map(str, draw(st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True))))
    return f"delete from notes where patient_id in ({ids}); delete from patients where id in ({ids})"


def _edit(conn, kind: str, key: int, value: str) -> None:
    if kind == "patient":
        conn.execute("update patients set phone = %s where id = %s", (value, key))
    elif kind == "note":
        conn.execute("update notes set body = %s where patient_id = %s and at = %s", (value, key, AT))
    elif kind == "contact":
        conn.execute("update contacts set value = %s where id = %s", (value, key))
    elif kind == "new_note":
        conn.execute("insert into notes (patient_id, at, body) values (%s, now(), %s)", (key, value))
    else:
        conn.execute("insert into contacts (id, patient_id, value) values (%s, %s, %s)", (key + 10, key, value))


@pytest.fixture(scope="module")
def template(pg):
    tpl = Template(pg)
    yield tpl
    tpl.databases.drop_all()


@settings(max_examples=5, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(removal=_removals(), edits=EDITS, policy=st.sampled_from(POLICIES), reference=st.booleans(),
       cloud_note=st.booleans())
def test_generated_removals_against_edits_of_another_pc(template, removal, edits, policy, reference, cloud_note):
    """pc-1 removes patients with their children while pc-2 edits them (offline, or while its pull waits for the
    row); the cloud may add a note under one meanwhile (kept). Every sync goes through, every database ends as the
    cloud, and each of pc-2's committed edits is in the final state or in a record."""
    w = World("t", reference, template.clone("t"))
    try:
        for db in DATABASES:
            with psycopg.connect(w.dsns[db], autocommit=True) as conn:
                conn.execute("update ccsync.tracked set policy = %s", (policy,))
        with psycopg.connect(w.dsns["cloud"], autocommit=True) as conn:
            conn.execute(SEED_DIFF)
        for node in NODES:
            w.run("sync", node)
        written = []
        for n, (kind, key, while_pulling) in enumerate(edits):
            value = f"pc-2 edit {n}"
            with psycopg.connect(w.dsns["pc-2"]) as app:
                try:
                    with app.transaction():
                        _edit(app, kind, key, value)
                except psycopg.Error:
                    continue  # a key taken: the application's error, nothing written
                if while_pulling:
                    puller = threading.Thread(target=w.run, args=("pull", "pc-2"))
                    puller.start()
                    _wait_blocked(w.dsns["pc-2"], puller, timeout=1.0)
                app.commit()
                if while_pulling:
                    puller.join(60)
            written.append(value)
        with psycopg.connect(w.dsns["pc-1"], autocommit=True) as conn:
            conn.execute(removal)
        if cloud_note:
            with psycopg.connect(w.dsns["cloud"], autocommit=True) as conn:
                conn.execute("insert into notes (patient_id, at, body) values (1, now(), 'cloud note')")
        for node in ("pc-1", "pc-2", "pc-2", "pc-1"):
            w.run("sync", node)  # raises if a PC is stuck
        for node in NODES:
            w.run("sync", node)
        with psycopg.connect(w.dsns["cloud"], autocommit=True) as conn:
            conn.execute("set timezone = 'UTC'")
            final = {t: _rows(conn, t) for t in DIFF_TABLES}
            records = str(conn.execute("select c::text from ccsync.conflicts c").fetchall())
        for node in NODES:
            with psycopg.connect(w.dsns[node], autocommit=True) as conn:
                conn.execute("set timezone = 'UTC'")
                assert {t: _rows(conn, t) for t in DIFF_TABLES} == final, f"{node} differs from the cloud"
        lost = [v for v in written if v not in str(final) and v not in records]
        assert not lost, f"pc-2's writes {lost} are nowhere"
    finally:
        template.drop([dsn for db, dsn in w.dsns.items() if db in DATABASES])


SEED_DIFF = """
insert into patients (id, name, phone) select i, 's' || i, 's' || i from generate_series(1, 3) i;
insert into contacts (id, patient_id, value) select i, i, 's' || i from generate_series(1, 3) i;
insert into notes (patient_id, at, body) select i, '2026-03-29 01:30:00+00', 's' || i from generate_series(1, 3) i;
"""


@pytest.mark.parametrize("reference", ["", "1"], ids=["fast", "reference"])
def test_a_cloud_truncate_after_rows_with_deferred_checks_is_pulled(make_practice, monkeypatch, reference):
    """A note written before its patient (the deferred key checked at COMMIT), then a TRUNCATE of the notes: pulled
    in one target transaction, the TRUNCATE met the note's pending check ('pending trigger events') at every try."""
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = _practice(make_practice, ("pc-1",))
    with psycopg.connect(p.cloud) as conn:
        conn.execute("insert into notes (patient_id, at, body) values (9, now(), 'n')")
        conn.execute("insert into patients (id, name) values (9, 'Ida')")
    p.sql(p.cloud_owner, "truncate notes")  # the application has no TRUNCATE privilege
    p.sync_all()
    p.assert_converged(TABLES)
    assert p.sql(p.nodes["pc-1"], "select count(*) from notes") == [(0,)]
