"""No PC stuck: a transaction the cloud's constraints refuse becomes a record a person decides; the queue moves on."""

import psycopg
import pytest
from click.testing import CliRunner

import cli
import reconciler
from reconciler import conflicts
from tests.fix_sync import on_node


@pytest.fixture
def p(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.alter("alter table patients add column inss text unique")  # the same ALTER on every side, as the README says
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111'), (2, 'Bert', '222')")
    p.sync_all()
    return p


def _records(p, node="pc-1", kind="refused"):
    return [c for c in on_node(p.nodes[node], conflicts.list_conflicts, include_resolved=True) if c["kind"] == kind]


def test_a_child_of_a_parent_the_cloud_deleted_is_refused_kept_and_the_queue_moves_on(p):
    with psycopg.connect(p.nodes["pc-1"]) as conn:  # one transaction: a good row and the refused one together
        conn.execute("insert into patients (id, name) values (3, 'Carla')")
        conn.execute("insert into encounters (id, patient_id, summary) values (10, 1, 'confidential summary')")
    p.sql(p.cloud, "delete from patients where id = 1")
    result = p.sync("pc-1")
    assert result["pushed"]["refused"] == 1
    p.sql(p.nodes["pc-1"], "update patients set phone = 'after' where id = 2")  # the queue moves on
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select id from patients order by 1") == [(2,)]  # never split: Carla went with it
    assert p.sql(p.cloud, "select phone from patients where id = 2") == [("after",)]
    [r] = _records(p, "pc-2")
    assert r["status"] == "open" and r["node"] == "pc-1"
    assert r["reason"] == ("the cloud refused this PC's new row in public.encounters: the row of public.patients "
                           "it refers to is not on the cloud (deleted there)")
    assert [(c["table"], c["op"]) for c in r["changes"]] == [("public.patients", "I"), ("public.encounters", "I")]
    assert r["changes"][1]["new"]["summary"] == "confidential summary"  # the full content, kept in the record


def test_two_pcs_registering_one_unique_value_the_second_is_refused(p):
    p.sql(p.nodes["pc-1"], "insert into patients (id, name, inss) values (10, 'first', '85073003328')")
    p.sql(p.nodes["pc-2"], "insert into patients (id, name, inss) values (20, 'second', '85073003328')")
    p.sync("pc-1")
    p.sync("pc-2")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select id from patients where inss is not null") == [(10,)]
    [r] = _records(p, "pc-1")
    assert r["node"] == "pc-2" and "already has the same inss" in r["reason"] and "85073003328" not in r["reason"]


def test_a_deferred_constraint_failing_at_commit_is_refused_not_stuck(p):
    for dsn in [p.cloud_owner, *p.nodes.values()]:
        p.sql(dsn, "create table visits (id int primary key, patient_id int, "
                   "constraint visits_patient foreign key (patient_id) references patients (id) deferrable initially deferred)")
    for dsn in [p.cloud_owner, *p.nodes.values()]:
        reconciler.track(dsn, ["visits"])
    p.sql(p.nodes["pc-1"], "insert into visits values (1, 2)")
    p.sql(p.cloud, "delete from patients where id = 2")
    p.sync_all()
    p.assert_converged(tables=("patients", "visits"))
    [r] = _records(p)
    assert r["changes"][0]["table"] == "public.visits"


def test_a_refused_transaction_is_applied_again_or_discarded_by_a_person(p):
    p.sql(p.nodes["pc-1"], "insert into encounters (id, patient_id, summary) values (10, 1, 'kept')")
    p.sql(p.nodes["pc-1"], "insert into encounters (id, patient_id, summary) values (11, 1, 'dropped')")
    p.sql(p.cloud, "delete from patients where id = 1")
    p.sync_all()
    first, second = sorted(_records(p), key=lambda r: r["id"])
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'Anna again')")
    p.sync_all()
    for node, record, keep, by in (("pc-1", first, "apply-again", "Dr Peeters"), ("pc-2", second, "discard", "Dr Janssens")):
        result = CliRunner().invoke(cli.main, ["conflicts", "resolve", str(record["id"]), "--keep", keep, "--by", by,
                                               "--local", p.nodes[node]], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select id, summary from encounters") == [(10, "kept")]
    done = {r["id"]: (r["status"], r["resolution"], r["resolved_by"]) for r in _records(p, "pc-2")}
    assert done == {first["id"]: ("resolved", "applied again", "Dr Peeters"),
                    second["id"]: ("resolved", "discarded", "Dr Janssens")}


def test_a_push_that_fails_never_stops_the_pull_of_the_service(make_practice):
    from reconciler.db import open_node
    from reconciler.errors import CcsyncError
    from reconciler.service import Service

    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'edited' where id = 1")
    p.alter("alter table patients rename column phone to tel")  # the pending edit names a column gone: the push stops
    p.sql(p.cloud, "insert into patients (id, name, tel) values (2, 'Bert', '222')")
    service = Service(p.settings("pc-1"))
    service.home, service.name = open_node(p.nodes["pc-1"])  # what `run` opens before it syncs
    service._connect()
    try:
        with pytest.raises(CcsyncError, match="names column"):
            service._synchronize()
    finally:
        service._close_sides()
        service.home.close()
    assert p.sql(p.nodes["pc-1"], "select id, tel from patients order by 1") == [(1, "edited"), (2, "222")]
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal") == [(1,)]  # the edit still waits


@pytest.mark.parametrize("verb", ["pull", "login"])
@pytest.mark.parametrize("local", ["delete from patients where id = 2", "truncate encounters, patients"])
def test_a_pull_meeting_a_local_delete_not_pushed_yet_moves_on(p, verb, local):
    """The cloud adds a row under a patient this PC deleted offline: this PC's foreign key refuses it until the
    delete is pushed. The pull moves on (the row is read back after the push), it does not stop."""
    import reconciler

    p.sql(p.nodes["pc-1"], local)
    p.sql(p.cloud, "insert into encounters (id, patient_id, summary) values (7, 2, 'written on the cloud')")
    p.sql(p.cloud, "update patients set phone = 'later' where id = 1")
    getattr(reconciler.sync, verb)(p.settings("pc-1"))
    if local.startswith("delete"):
        assert p.sql(p.nodes["pc-1"], "select phone from patients where id = 1") == [("later",)]
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select id, patient_id from encounters") == [(7, 2)]  # the cloud's row is kept
