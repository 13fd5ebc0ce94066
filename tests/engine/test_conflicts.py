"""Conflicts: detected per column against the base, recorded with both rows, resolved by a person or a policy."""

import json
import re

import pytest

import cli
import reconciler
from click.testing import CliRunner
from reconciler import conflicts
from reconciler.errors import CcsyncError
from tests.fix_sync import on_node


@pytest.fixture
def p(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name, phone, notes) values (1, 'Anna', '111', 'n0')")
    p.sync_all()
    return p


def node(p, name="pc-1"):
    return p.nodes[name]


def test_disjoint_column_changes_merge(p):
    p.sql(node(p), "update patients set phone = '222' where id = 1")
    p.sql(p.cloud, "update patients set notes = 'cloud note' where id = 1")
    p.sync("pc-1")
    p.sync_all()
    assert p.sql(p.cloud, "select phone, notes from patients")[0] == ("222", "cloud note")
    p.assert_converged()
    assert p.conflicts(p.cloud) == []


def test_same_column_both_sides_is_update_update_and_cloud_stays(p):
    p.sql(node(p), "update patients set phone = 'local', notes = 'local note' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    result = p.sync("pc-1")
    assert result["conflicts"] == 1
    # the cloud's version stays on the phone; the local note (no conflict) merged
    assert p.sql(p.cloud, "select phone, notes from patients")[0] == ("cloud", "local note")
    p.sync_all()
    p.assert_converged()
    [c] = on_node(node(p), conflicts.list_conflicts)
    assert (c["kind"], c["node"], c["table_name"], c["pk"], c["columns"]) == (
        "update_update", "pc-1", "public.patients", {"id": 1}, ["phone"])
    assert c["local_row"]["phone"] == "local" and c["cloud_row"]["phone"] == "cloud"
    assert c["base"] == {"phone": "111", "notes": "n0"}
    assert "root['phone']" in json.dumps(c["diff"])
    assert c["local_hlc"] and c["cloud_hlc"] and c["status"] == "open"
    # every PC sees it, the other PC too (replicated like a tracked table)
    assert len(on_node(node(p, "pc-2"), conflicts.list_conflicts)) == 1


def test_same_value_on_both_sides_is_no_conflict(p):
    p.sql(node(p), "update patients set phone = 'same' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'same' where id = 1")
    assert p.sync("pc-1")["conflicts"] == 0
    p.sync_all()
    p.assert_converged()


def test_update_against_cloud_delete_is_update_delete(p):
    p.sql(node(p), "update patients set phone = 'local' where id = 1")
    p.sql(p.cloud, "delete from patients where id = 1")
    p.sync("pc-1")
    assert p.sql(p.cloud, "select count(*) from patients")[0][0] == 0
    p.sync_all()
    p.assert_converged()
    assert [c[0] for c in p.conflicts(p.cloud)] == ["update_delete"]


def test_delete_against_cloud_update_is_delete_update(p):
    p.sql(node(p), "delete from patients where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync("pc-1")
    p.sync_all()
    assert p.sql(node(p), "select phone from patients")[0][0] == "cloud"  # the cloud's version is back
    p.assert_converged()
    assert [c[0] for c in p.conflicts(p.cloud)] == ["delete_update"]


def test_two_inserts_of_one_key_is_insert_insert(p):
    p.sql(node(p), "insert into patients (id, name) values (2, 'from pc-1')")
    p.sql(p.cloud, "insert into patients (id, name) values (2, 'from cloud')")
    p.sync("pc-1")
    p.sync_all()
    assert p.sql(node(p), "select name from patients where id = 2")[0][0] == "from cloud"
    p.assert_converged()
    assert [c[0] for c in p.conflicts(p.cloud)] == ["insert_insert"]


def test_several_local_changes_to_one_row_are_a_record_each_with_its_own_base(p):
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    for v in ("l1", "l2", "l3"):
        p.sql(node(p), "update patients set phone = %s where id = 1", (v,))
    p.sync("pc-1")
    p.sync_all()
    records = on_node(node(p), conflicts.list_conflicts)
    assert [c["base"]["phone"] for c in records] == ["111", "l1", "l2"]
    assert {c["local_row"]["phone"] for c in records} == {"l3"}  # the PC's version, as it stands
    p.assert_converged()


def test_conflicts_on_two_nodes_for_one_row_are_two_records(p):
    p.sql(node(p, "pc-1"), "update patients set phone = 'one' where id = 1")
    p.sql(node(p, "pc-2"), "update patients set phone = 'two' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync_all()
    assert sorted(c[1] for c in p.conflicts(p.cloud)) == ["pc-1", "pc-2"]
    p.assert_converged()


# -- resolution -------------------------------------------------------------------------------------
def _one_conflict(p):
    p.sql(node(p), "update patients set phone = 'local', notes = 'local note' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud', name = 'Anna B' where id = 1")
    p.sync_all()
    [c] = on_node(node(p), conflicts.list_conflicts)
    return c["id"]


def test_keep_local_reaches_cloud_and_every_node_without_undoing_merged_columns(p):
    cid = _one_conflict(p)
    resolved = on_node(node(p, "pc-2"), conflicts.resolve, cid, "local", by="Dr Peeters")
    assert (resolved["status"], resolved["resolved_by"], resolved["resolution"]) == ("resolved", "Dr Peeters", "kept local")
    p.sync_all()
    assert p.sql(p.cloud, "select name, phone, notes from patients")[0] == ("Anna B", "local", "local note")
    p.assert_converged()
    for dsn in [p.cloud, *p.nodes.values()]:
        assert p.conflicts(dsn) == []
        assert [r[0] for r in p.conflicts(dsn, "resolved")] == ["update_update"]


def test_keep_cloud_closes_the_conflict(p):
    cid = _one_conflict(p)
    on_node(node(p), conflicts.resolve, cid, "cloud", by="assistant")
    p.sync_all()
    assert p.sql(p.cloud, "select phone from patients")[0][0] == "cloud"
    p.assert_converged()
    assert p.conflicts(p.cloud) == []


def test_merged_resolution_writes_the_given_values(p):
    cid = _one_conflict(p)
    on_node(node(p), conflicts.resolve, cid, "merged", by="Dr Peeters", merged={"phone": "merged 333"})
    p.sync_all()
    assert p.sql(p.cloud, "select phone, name from patients")[0] == ("merged 333", "Anna B")
    p.assert_converged()


def test_resolving_twice_is_a_clear_error(p):
    cid = _one_conflict(p)
    on_node(node(p), conflicts.resolve, cid, "cloud", by="a")
    with pytest.raises(conflicts.AlreadyResolved, match=f"conflict {cid} was already resolved"):
        on_node(node(p), conflicts.resolve, cid, "local", by="b")


def test_resolution_of_unknown_conflict_or_bad_merge_is_refused(p):
    cid = _one_conflict(p)
    with pytest.raises(conflicts.UnknownConflict):
        on_node(node(p), conflicts.resolve, 999999, "cloud", by="a")
    with pytest.raises(CcsyncError, match="unknown column"):
        on_node(node(p), conflicts.resolve, cid, "merged", by="a", merged={"nope": 1})
    with pytest.raises(CcsyncError, match="primary key"):
        on_node(node(p), conflicts.resolve, cid, "merged", by="a", merged={"id": 5})
    with pytest.raises(CcsyncError, match="not valid JSON"):
        on_node(node(p), conflicts.resolve, cid, "merged", by="a", merged="{oops")
    assert on_node(node(p), conflicts.get_conflict, cid)["status"] == "open"


# -- policies ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy, expected_phone, resolution",
    [
        ("cloud-wins", "cloud", "policy cloud-wins: kept cloud"),
        ("node-wins", "local", "policy node-wins: kept local"),
        ("latest-wins", "local", "policy latest-wins: kept local"),  # the local edit is the later one
    ],
)
def test_policies_resolve_automatically_and_still_record(make_practice, policy, expected_phone, resolution):
    p = make_practice(nodes=("pc-1", "pc-2"), policy=policy)
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111')")
    p.sync_all()
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sql(p.nodes["pc-1"], "update patients set phone = 'local' where id = 1")
    p.sync_all()
    assert p.sql(p.cloud, "select phone from patients")[0][0] == expected_phone
    p.assert_converged()
    rows = p.sql(p.cloud_owner, "select kind, status, resolution, resolved_by from ccsync.conflicts")
    assert rows == [("update_update", "resolved", resolution, "policy")]
    # the losing version stays findable in the record, whichever side lost
    assert p.sql(p.cloud_owner, "select local_row ->> 'phone', cloud_row ->> 'phone' from ccsync.conflicts") == [
        ("local", "cloud")]


def test_latest_wins_keeps_the_cloud_when_its_change_is_later(make_practice):
    p = make_practice(nodes=("pc-1",), policy="latest-wins")
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'local' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync_all()
    assert p.sql(p.cloud, "select phone from patients")[0][0] == "cloud"
    p.assert_converged()


@pytest.mark.parametrize("policy", ["node-wins", "cloud-wins"])
def test_policies_on_update_delete_and_insert_insert(make_practice, policy):
    p = make_practice(nodes=("pc-1",), policy=policy)
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'A'), (2, 'B')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set name = 'A local' where id = 1")
    p.sql(p.nodes["pc-1"], "delete from patients where id = 2")
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (3, 'C local')")
    p.sql(p.cloud, "delete from patients where id = 1")
    p.sql(p.cloud, "update patients set name = 'B cloud' where id = 2")
    p.sql(p.cloud, "insert into patients (id, name) values (3, 'C cloud')")
    p.sync_all()
    p.assert_converged()
    names = dict(p.sql(p.cloud, "select id, name from patients"))
    if policy == "node-wins":
        assert names == {1: "A local", 3: "C local"}
    else:
        assert names == {2: "B cloud", 3: "C cloud"}
    kinds = sorted(r[0] for r in p.sql(p.cloud_owner, "select kind from ccsync.conflicts"))
    assert kinds == ["delete_update", "insert_insert", "update_delete"]


def test_latest_wins_keeps_the_cloud_when_its_time_was_pruned(make_practice):
    from reconciler.engine import housekeeping
    import psycopg

    p = make_practice(nodes=("pc-1", "pc-2"), policy="latest-wins")
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'older, on the pc' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'newer, on the cloud' where id = 1")
    p.pull("pc-1")  # skips the row (a local change waits) but moves the position
    p.pull("pc-2")
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        assert housekeeping.prune(cloud, retention=0, max_retention=10**9) >= 1
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select phone from patients") == [("newer, on the cloud",)]
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts, include_resolved=True)
    assert c["local_row"]["phone"] == "older, on the pc" and c["resolution"] == "policy latest-wins: kept cloud"


def test_a_second_conflict_on_a_row_gets_its_own_record_and_a_decision_closes_only_its_own(p):
    p.sql(node(p), "update patients set phone = 'local one' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud one' where id = 1")
    p.sync_all()
    p.sql(node(p), "update patients set phone = 'local two' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud two' where id = 1")
    p.sync_all()
    first, second = on_node(node(p), conflicts.list_conflicts)
    assert (first["local_row"]["phone"], second["local_row"]["phone"]) == ("local one", "local two")
    on_node(node(p), conflicts.resolve, first["id"], "cloud", by="Dr Peeters")
    p.sync_all()
    [still] = on_node(node(p, "pc-2"), conflicts.list_conflicts)
    assert still["id"] == second["id"] and still["local_row"]["phone"] == "local two"


def test_two_pcs_deciding_one_conflict_the_first_decision_holds_and_the_second_is_refused(p):
    p.sql(node(p), "update patients set phone = 'local' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync_all()
    [c] = on_node(node(p), conflicts.list_conflicts)
    on_node(node(p, "pc-1"), conflicts.resolve, c["id"], "local", by="Dr Peeters")  # both offline
    on_node(node(p, "pc-2"), conflicts.resolve, c["id"], "cloud", by="Dr Janssens")
    p.sync("pc-1")
    p.sync("pc-2")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select phone from patients") == [("local",)]  # pc-1's choice, as the record says
    done = on_node(node(p, "pc-2"), conflicts.get_conflict, c["id"])
    assert (done["resolution"], done["resolved_by"]) == ("kept local", "Dr Peeters")
    [refused] = [r for r in on_node(node(p, "pc-2"), conflicts.list_conflicts) if r["kind"] == "refused"]
    assert refused["node"] == "pc-2" and "already decided" in refused["reason"]
    assert {ch["table"] for ch in refused["changes"]} == {"ccsync.conflicts"}  # its decision, whole
    code = refused["reason_code"]  # who decided and when, as names and a time, for any language to word
    assert (code["code"], code["record"], code["resolution"], code["by"]) == ("already_decided", str(c["id"]),
                                                                            "kept local", "Dr Peeters")
    # the CLI shows that time in the practice's zone, the zone named (Europe/Brussels: CET or CEST), not UTC
    shown = CliRunner().invoke(cli.main, ["conflicts", "show", str(refused["id"]), "--local", node(p, "pc-2")],
                               catch_exceptions=False).output
    shown = " ".join(shown.split())  # wrapped to the terminal
    assert "already decided (kept local) by Dr Peeters at " in shown and " UTC" not in shown
    assert re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T", shown), shown


def test_a_decision_revisited_is_a_new_decision_with_who_and_when(p):
    p.sql(node(p), "update patients set phone = 'local' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync_all()
    [c] = on_node(node(p), conflicts.list_conflicts)
    first = on_node(node(p), conflicts.resolve, c["id"], "cloud", by="Dr Peeters")
    p.sync_all()
    with pytest.raises(conflicts.AlreadyResolved):
        on_node(node(p, "pc-2"), conflicts.resolve, c["id"], "local", by="Dr Janssens")
    again = on_node(node(p, "pc-2"), conflicts.resolve, c["id"], "local", by="Dr Janssens", revisit=True)
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select phone from patients") == [("local",)]
    final = on_node(p.cloud_owner, conflicts.get_conflict, c["id"])
    assert (final["resolution"], final["resolved_by"], final["decided_on"]) == (
        "revisited: kept local", "Dr Janssens", "pc-2")
    assert final["decision"] == again["decision"] != first["decision"]
    decided = p.sql(node(p), "select resolution, resolved_by, decided_on, revisit_of is not null "
                             "from ccsync.decisions order by accepted_at")
    assert decided == [("kept cloud", "Dr Peeters", "pc-1", False), ("revisited: kept local", "Dr Janssens", "pc-2", True)]


def test_a_conflict_on_a_large_value_keeps_both_rows_and_a_small_diff(make_practice):
    p = make_practice(nodes=("pc-1",))
    p.alter("alter table patients add column scan bytea")
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'Anna')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set scan = convert_to(repeat('L', 1000000), 'UTF8') where id = 1")
    p.sql(p.cloud, "update patients set scan = convert_to(repeat('C', 1000000), 'UTF8') where id = 1")
    p.sync_all()
    [(local, cloud, diff_size, diff)] = p.sql(
        p.cloud_owner, "select length(local_row ->> 'scan'), length(cloud_row ->> 'scan'), length(diff::text), diff::text "
                 "from ccsync.conflicts")
    assert local == cloud == 2 + 2 * 1000000  # both versions whole (bytea as hex)
    assert diff_size < 2000 and "root['scan']" in diff
    # the PC's version, chosen by a person, comes back whole everywhere
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts)
    on_node(p.nodes["pc-1"], conflicts.resolve, c["id"], "local", by="Dr Peeters")
    p.sync_all()
    whole = "select length(scan), scan = convert_to(repeat('L', 1000000), 'UTF8') from patients where id = 1"
    assert p.sql(p.cloud, whole) == p.sql(p.nodes["pc-1"], whole) == [(1000000, True)]


@pytest.mark.parametrize("reference", ["", "1"])  # the fast path pushes both transactions in one target transaction
def test_a_record_keeps_the_cloud_row_as_its_own_change_left_it_not_as_later_changes_did(p, monkeypatch, reference):
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p.sql(node(p), "update patients set phone = 'local' where id = 1")  # conflicts with the cloud's phone
    p.sql(node(p), "update patients set notes = 'later local note' where id = 1")  # a later transaction, merges
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync_all()
    p.assert_converged()
    [c] = on_node(node(p, "pc-2"), conflicts.list_conflicts)
    # the cloud's version when the conflicting change met it: as the reference path, one transaction at a time,
    # records it (the later transaction's note is not part of what the first one conflicted with)
    assert (c["cloud_row"]["phone"], c["cloud_row"]["notes"]) == ("cloud", "n0")
    assert (c["local_row"]["phone"], c["local_row"]["notes"]) == ("local", "later local note")


@pytest.mark.parametrize("reference", ["", "1"])  # one push transaction, or one per source transaction
def test_latest_wins_compares_with_the_other_writers_time_whatever_the_path(make_practice, monkeypatch, reference):
    """Found by the soak: the cloud's version sent back to the PC after its first conflict was counted as a cloud
    write, so the reference path (which commits it before the second transaction) kept the cloud's older value."""
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = make_practice(nodes=("pc-1",), policy="latest-wins")
    p.sql(p.cloud, "insert into patients (id, name, phone) values (2, 'Bert', '222')")
    p.sync_all()
    p.sql(p.cloud, "update patients set phone = 'cloud 1' where id = 2")
    p.sql(p.nodes["pc-1"], "update patients set phone = 'pc 1' where id = 2")
    p.sql(p.cloud, "update patients set phone = 'cloud 2' where id = 2")
    p.sql(p.nodes["pc-1"], "update patients set phone = 'pc 2' where id = 2")  # the latest of all
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select phone from patients where id = 2") == [("pc 2",)]


@pytest.mark.parametrize("kind", ["update_delete", "delete_update"])
def test_a_decision_this_pcs_foreign_key_refuses_is_one_line_naming_the_table_and_writes_nothing(p, kind):
    """Found by the soak: keeping this PC's version of a row whose parent is gone (or deleting a row that rows
    of another table now refer to) raised a raw ForeignKeyViolation. One line naming the table and what to do
    instead, from the library, the CLI and the panel (400); the record stays open and nothing is written."""
    from reconciler import panel_users
    from tests.fix_web import SECRET
    from web import create_app

    if kind == "update_delete":  # this PC's visit, whose patient the cloud deleted with the visit
        p.sql(p.cloud, "insert into encounters (id, patient_id, summary) values (10, 1, 'base')")
        p.sync_all()
        p.sql(node(p), "update encounters set summary = 'pc' where id = 10")
        p.sql(p.cloud, "delete from encounters where id = 10")
        p.sql(p.cloud, "delete from patients where id = 1")
        table, named = "public.encounters", "public.patients"
    else:  # this PC deleted the patient; the cloud edited it and then recorded a visit of it
        p.sql(node(p), "delete from patients where id = 1")
        p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
        table, named = "public.patients", "public.encounters"
    p.sync_all()
    if kind == "delete_update":
        p.sql(p.cloud, "insert into encounters (id, patient_id, summary) values (10, 1, 'a visit')")
        p.sync_all()
    [c] = on_node(node(p), conflicts.list_conflicts)
    assert (c["kind"], c["table_name"]) == (kind, table)
    before = {t: p.sql(node(p), f"select t::text from {t} t order by 1") for t in ("patients", "encounters")}

    with pytest.raises(CcsyncError) as told:
        on_node(node(p), conflicts.resolve, c["id"], "local", by="Dr Peeters")
    line = str(told.value)
    assert "\n" not in line and named in line and "keep the cloud's version" in line, line
    assert "ForeignKey" not in line and "'pc'" not in line

    result = CliRunner().invoke(cli.main, ["conflicts", "resolve", str(c["id"]), "--keep", "local",
                                           "--by", "Dr Peeters", "--local", node(p)])
    assert result.exit_code != 0 and "Traceback" not in result.output and named in result.output, result.output
    assert result.output.strip().count("\n") == 0, result.output

    token = panel_users.add(node(p), "robot", "another good password", token=True)["token"]
    app = create_app({"SETTINGS": p.settings("pc-1"), "SECRET_KEY": SECRET, "TESTING": True})
    answer = app.test_client().post(f"/api/conflicts/{c['id']}/resolve", json={"keep": "local"},
                                    headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and named in answer.get_data(as_text=True), answer.get_data(as_text=True)

    # nothing written, the record still open: keeping the cloud's version still works
    assert {t: p.sql(node(p), f"select t::text from {t} t order by 1") for t in before} == before
    assert on_node(node(p), conflicts.get_conflict, c["id"])["status"] == "open"
    on_node(node(p), conflicts.resolve, c["id"], "cloud", by="Dr Peeters")
    p.sync_all()
    p.assert_converged()
