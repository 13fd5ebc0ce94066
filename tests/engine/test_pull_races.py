"""A pull meets the practice's application: uncommitted edits on the rows it applies, truncates on the cloud."""

import threading
import time

import psycopg
import pytest

from reconciler import conflicts, sync
from tests.fix_sync import on_node


def _blocked(dsn: str, thread: threading.Thread, timeout: float = 10.0) -> bool:
    """Wait until a session of this database waits for a lock (the pull), or the thread ended."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while thread.is_alive() and time.monotonic() < deadline:
            if conn.execute("select exists (select 1 from pg_stat_activity where datname = current_database() "
                            "and wait_event_type = 'Lock')").fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def _pull_while(p, node: str, app: psycopg.Connection, verb: str = "pull") -> None:
    """Run a pull (or login) while `app` holds its transaction open, then commit `app` and let the pull end."""
    errors = []
    thread = threading.Thread(target=lambda: errors.extend(_try(lambda: getattr(sync, verb)(p.settings(node)))))
    thread.start()
    assert _blocked(p.nodes[node], thread), "the pull did not wait for the application's transaction"
    app.commit()
    thread.join(60)
    assert not errors, errors


def _try(fn):
    try:
        fn()
    except Exception as exc:  # reported in the test's thread
        return [exc]
    return []


@pytest.mark.parametrize("verb", ["pull", "login"])
def test_an_edit_committed_while_a_pull_waits_for_its_row_is_kept(make_practice, verb):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111'), (2, 'Bert', '222')")
    p.sync_all()
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    with psycopg.connect(p.nodes["pc-1"]) as app:
        app.execute("set timezone = 'Europe/Brussels'")
        app.execute("update patients set phone = 'local' where id = 1")
        _pull_while(p, "pc-1", app, verb)
    # the pull left the row alone: the local edit waits for the push, which records the conflict
    assert p.sql(p.nodes["pc-1"], "select phone from patients where id = 1") == [("local",)]
    p.sync_all()
    p.assert_converged()
    [c] = on_node(p.nodes["pc-2"], conflicts.list_conflicts)
    assert (c["kind"], c["local_row"]["phone"], c["cloud_row"]["phone"]) == ("update_update", "local", "cloud")


def test_an_insert_committed_while_a_pull_inserts_the_same_key_is_kept(make_practice):
    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (5, 'cloud', 'c')")
    with psycopg.connect(p.nodes["pc-1"]) as app:
        app.execute("insert into patients (id, name, phone) values (5, 'local', 'l')")
        _pull_while(p, "pc-1", app)
    assert p.sql(p.nodes["pc-1"], "select name from patients where id = 5") == [("local",)]
    p.sync_all()
    p.assert_converged()
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts)
    assert (c["kind"], c["local_row"]["name"], c["cloud_row"]["name"]) == ("insert_insert", "local", "cloud")


def test_a_row_inserted_on_a_pc_survives_a_truncate_the_cloud_made_before(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'old')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (2, 'new on the pc')")
    p.sql(p.cloud_owner, "truncate encounters, patients")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select id, name from patients") == [(2, "new on the pc")]


def test_a_later_truncate_in_one_cloud_transaction_is_applied_in_its_place(make_practice):
    p = make_practice(nodes=("pc-1",))
    with psycopg.connect(p.cloud_owner) as conn:
        conn.execute("truncate encounters, patients")
        conn.execute("insert into patients (id, name) values (1, 'one')")
        conn.execute("truncate encounters, patients")
        conn.execute("insert into patients (id, name) values (2, 'two')")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select id from patients") == [(2,)]


def test_a_pending_edit_of_a_row_the_cloud_truncated_is_kept_in_the_record(make_practice):
    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'edited offline' where id = 1")
    p.sql(p.cloud_owner, "truncate encounters, patients")
    sync.login(p.settings("pc-1"))  # a pull before the push
    p.sync_all()
    p.assert_converged()
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts)
    assert c["kind"] == "update_delete" and c["local_row"]["phone"] == "edited offline"


def test_a_row_the_cloud_rekeyed_after_a_skipped_pull_is_moved_by_the_refresh(make_practice):
    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (4, 'Dirk', '444')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'local' where id = 4")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 4")
    p.pull("pc-1")  # skipped: a local change waits; remembered for a refresh
    p.sql(p.cloud, "update patients set id = 13 where id = 4")  # before that refresh
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select id, phone from patients") == [(13, "cloud")]
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts)
    assert c["local_row"]["phone"] == "local"


@pytest.mark.parametrize("reference", ["", "1"])  # the reference path pushes the two transactions one by one
def test_a_conflict_then_a_truncate_on_the_pc_leave_the_pc_as_the_cloud(make_practice, monkeypatch, reference):
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111'), (2, 'Bert', '222')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'local' where id = 2")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 2")
    p.sql(p.nodes["pc-1"], "truncate encounters, patients")  # after its conflicting edit, in a later transaction
    p.sync_all()
    p.assert_converged()
    # row 1, as the PC had it, is emptied; row 2 carries the cloud's edit the PC never saw: it stays, and the PC's
    # edit and its truncate of the row are each a record
    assert p.sql(p.cloud, "select id, phone from patients") == [(2, "cloud")]
    records = sorted((c["kind"], (c["local_row"] or {}).get("phone")) for c in on_node(p.nodes["pc-1"], conflicts.list_conflicts))
    assert records == [("delete_update", None), ("update_update", "local")]


@pytest.fixture
def truncated(make_practice):
    """pc-1 truncates what it has; the cloud (another PC's push, the application) writes before pc-1 pushes."""
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111'), (2, 'Bert', '222')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "truncate encounters, patients")
    return p


@pytest.mark.parametrize("reference", ["", "1"])
@pytest.mark.parametrize("pull_between", [False, True])  # pc-1 pulls the new rows after its truncate, then pushes
def test_a_truncate_made_on_a_pc_empties_only_the_rows_it_had(truncated, monkeypatch, reference, pull_between):
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = truncated
    p.sql(p.nodes["pc-2"], "insert into patients (id, name) values (3, 'new on pc-2')")
    p.sync("pc-2")
    p.sql(p.cloud, "insert into patients (id, name) values (4, 'new on the cloud')")
    if pull_between:
        p.pull("pc-1")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select id from patients order by 1") == [(3,), (4,)]
    assert on_node(p.nodes["pc-1"], conflicts.list_conflicts) == []  # pc-1 never had them: nothing to decide


@pytest.mark.parametrize("pull_between", [False, True])
def test_a_row_the_cloud_edited_after_a_pc_truncated_it_stays_with_a_record(truncated, pull_between):
    p = truncated
    p.sql(p.cloud, "update patients set phone = 'edited on the cloud' where id = 2")
    if pull_between:
        p.pull("pc-1")  # the edit finds no row on pc-1: the push's record brings the row back
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select id, phone from patients") == [(2, "edited on the cloud")]
    [c] = on_node(p.nodes["pc-2"], conflicts.list_conflicts)
    assert (c["kind"], c["node"], c["pk"], c["cloud_row"]["phone"]) == ("delete_update", "pc-1", {"id": 2},
                                                                         "edited on the cloud")


def test_a_row_the_cloud_added_under_a_truncated_parent_keeps_its_parent(truncated):
    p = truncated
    p.sql(p.cloud, "insert into encounters (id, patient_id, summary) values (7, 1, 'written on the cloud')")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select e.id, p.id from encounters e join patients p on p.id = e.patient_id") == [(7, 1)]
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts)
    assert (c["kind"], c["table_name"], c["pk"]) == ("delete_update", "public.patients", {"id": 1})
