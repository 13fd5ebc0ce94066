"""How a chunk is cut into set statements, and what the cloud journals for them, on real servers."""

import psycopg
import pytest

from reconciler.engine import journal as _journal


def _plan(p, node, mode):
    with psycopg.connect(p.nodes[node], autocommit=True) as conn:
        since = p.sql(p.cloud_owner, "select push_snapshot::text from ccsync.nodes where name = %s", (node,))[0][0]
        window = _journal.Window(since, _journal.current_snapshot(conn))
        batch = _journal.transactions(conn, window)
        return _journal.plan(conn, window, batch, mode)


@pytest.mark.one_version  # how a chunk is cut: Python, the same on every version
def test_many_small_transactions_become_one_statement_per_table_and_operation(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 100) g")
    p.pull("pc-1")
    with psycopg.connect(p.nodes["pc-1"], autocommit=True) as conn:
        for i in range(1, 101):
            conn.execute("insert into patients (id, name) values (%s, 'walk-in')", (1000 + i,))
            conn.execute("update patients set phone = %s where id = %s", (f"04{i}", i))
        conn.execute("update patients set phone = 'twice' where id = 1")  # a second change to row 1
    merged, runs = _plan(p, "pc-1", "merged"), _plan(p, "pc-1", "runs")
    assert [(s.table, s.op, s.count) for s in merged.steps] == [
        ("public.patients", "I", 100), ("public.patients", "U", 100), ("public.patients", "U", 1)]
    # in source order, the last two updates (rows 100 and 1) are consecutive: one run
    assert len(runs.steps) == 200 and len(_plan(p, "pc-1", "exact").steps) == 201
    done = p.push("pc-1")
    assert (done["changes"], done["transactions"], done["conflicts"]) == (201, 201, 0)
    p.pull("pc-1")
    p.assert_converged()
    assert p.sql(p.cloud, "select phone from patients where id = 1") == [("twice",)]


@pytest.mark.one_version  # how a chunk is cut: Python, the same on every version
def test_a_child_merged_before_its_parent_falls_back_to_the_source_order(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'known')")
    p.pull("pc-1")
    with psycopg.connect(p.nodes["pc-1"], autocommit=True) as conn:
        conn.execute("insert into encounters (id, patient_id, summary) values (100, 1, 'known patient')")
        conn.execute("insert into patients (id, name) values (2, 'new patient')")
        conn.execute("insert into encounters (id, patient_id, summary) values (101, 2, 'new patient')")
    merged = _plan(p, "pc-1", "merged")
    assert [s.table for s in merged.steps] == ["public.encounters", "public.patients"]  # the child first
    done = p.push("pc-1")
    assert (done["changes"], done["transactions"], done["conflicts"]) == (3, 3, 0)
    assert p.sql(p.cloud, "select id, patient_id from encounters order by 1") == [(100, 1), (101, 2)]
    p.pull("pc-1")
    p.assert_converged()


def test_the_cloud_journals_a_push_exactly_as_the_node_did(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'a', '01'), (2, 'b', '02'), (3, 'c', '03')")
    p.pull("pc-1")
    node = p.nodes["pc-1"]
    with psycopg.connect(node, autocommit=True) as conn:
        conn.execute("insert into patients (id, name, notes) values (4, 'd', 'it''s \"quoted\" \\\\ and ünïcode')")
        conn.execute("update patients set phone = '011', balance = 12.50 where id = 1")
        with conn.transaction():
            conn.execute("delete from patients where id = 2")
            conn.execute("update patients set name = 'c2' where id = 3")
    entries = "select op::text, pk::text, old::text, new::text from ccsync.journal where origin = 'pc-1' order by id"
    before = p.sql(node, entries)
    assert len(before) == 4
    node_clock = p.sql(node, "select max(hlc) from ccsync.journal")[0][0]
    p.push("pc-1")
    assert sorted(p.sql(p.cloud_owner, entries)) == sorted(before)
    stamps = [r[0] for r in p.sql(p.cloud_owner, "select hlc from ccsync.journal where origin = 'pc-1'")]
    assert len(set(stamps)) == 4 and min(stamps) > node_clock  # the cloud's clock, past the node's
    # another node pulls them like any other cloud change
    p.add_node("pc-2")
    p.assert_converged()


def test_a_cascade_under_a_pushed_delete_is_journaled_for_the_other_nodes(make_practice):
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, "create table notes (id int primary key, patient_id int references patients (id) "
                   "on delete cascade, body text)")
    p.sql(p.cloud_owner, "select ccsync.track('notes')")
    p.sql(p.cloud, "insert into patients (id, name) values (5, 'leaving')")
    p.add_node("pc-1")
    p.sql(p.cloud, "insert into notes values (50, 5, 'written on the cloud')")
    p.add_node("pc-2")  # has the note; pc-1 has not pulled it
    p.sql(p.nodes["pc-1"], "delete from patients where id = 5")
    p.push("pc-1")  # on the cloud the delete cascades to the note, below the reconciler's statement
    assert p.sql(p.cloud, "select count(*) from notes") == [(0,)]
    assert p.sql(p.cloud_owner, "select op::text, origin from ccsync.journal where table_name = 'public.notes' "
                          "order by id") == [("I", "cloud"), ("D", "pc-1")]
    p.pull("pc-2")
    assert p.sql(p.nodes["pc-2"], "select count(*) from notes") == [(0,)]
    p.sync_all()
    p.assert_converged(("patients", "notes"))


def test_a_window_of_inserts_into_one_table_goes_straight_in_without_staging(practice, monkeypatch):
    p = practice
    node = p.nodes["pc-1"]
    with psycopg.connect(node, autocommit=True) as conn:
        conn.execute("insert into patients (id, name, notes) values (1, 'a', 'x'), (2, 'b', null)")
        conn.execute("insert into patients (id, name, balance) select g, 'p' || g, g / 7.0 from generate_series(3, 500) g")
    entries = "select op::text, pk::text, old::text, new::text from ccsync.journal where origin = 'pc-1' order by id"
    before = p.sql(node, entries)
    node_clock = p.sql(node, "select max(hlc) from ccsync.journal")[0][0]

    def no_staging(*args, **kwargs):
        raise AssertionError("staged")

    monkeypatch.setattr(_journal, "plan", no_staging)
    done = p.push("pc-1")
    assert (done["changes"], done["transactions"], done["conflicts"]) == (500, 2, 0)
    assert sorted(p.sql(p.cloud_owner, entries)) == sorted(before)
    stamps = [r[0] for r in p.sql(p.cloud_owner, "select hlc from ccsync.journal where origin = 'pc-1'")]
    assert len(set(stamps)) == 1 and min(stamps) > node_clock  # one clock value for the one COPY statement
    assert p.rows(p.cloud) == p.rows(node)


def test_a_key_the_cloud_already_has_sends_a_window_of_inserts_the_staged_way(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) values (7, 'made on the cloud')")
    with psycopg.connect(p.nodes["pc-1"], autocommit=True) as conn:
        conn.execute("insert into patients (id, name) values (6, 'new'), (7, 'made on the PC'), (8, 'new too')")
    done = p.push("pc-1")
    assert (done["changes"], done["conflicts"]) == (3, 1)
    assert p.sql(p.cloud, "select id, name from patients order by 1") == [
        (6, "new"), (7, "made on the cloud"), (8, "new too")]
    assert p.conflicts(p.cloud) == [("insert_insert", "pc-1", "public.patients", '{"id": 7}', ["name"])]


def _whole_plan(p, node, mode="merged"):
    """The plan of the node's whole pending window, as a push makes it."""
    with psycopg.connect(p.nodes[node], autocommit=True) as conn:
        since = p.sql(p.cloud_owner, "select push_snapshot::text from ccsync.nodes where name = %s", (node,))[0][0]
        window = _journal.Window(since, _journal.current_snapshot(conn))
        return _journal.plan(conn, window, None, mode, whole=True)


def _staged(p, node, plan):
    """How many changes the stage holds per step once the plan is staged on the cloud (rolled back)."""
    with psycopg.connect(p.nodes[node], autocommit=True) as src, psycopg.connect(p.cloud) as dst:
        since = p.sql(p.cloud_owner, "select push_snapshot::text from ccsync.nodes where name = %s", (node,))[0][0]
        window = _journal.Window(since, _journal.current_snapshot(src))
        _journal.stage(src, dst, window, None, plan)
        staged = dst.execute("select step, count(*), count(distinct seq) from ccsync_stage group by 1 order by 1").fetchall()
        dst.rollback()
    return staged


def test_one_bulk_statement_is_planned_as_one_step_without_listing_its_changes(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name, phone) select g, 'p' || g, '0' || g from generate_series(1, 300) g")
    p.pull("pc-1")
    p.sql(p.nodes["pc-1"], "update patients set phone = phone || '9', notes = 'recalled' where id <= 200")
    one = _whole_plan(p, "pc-1")
    assert one.grouped and one.ids == [] and [(s.table, s.op, s.count, sorted(s.columns)) for s in one.steps] == [
        ("public.patients", "U", 200, ["notes", "phone"])]
    assert _staged(p, "pc-1", one) == [(1, 200, 200)]
    p.push("pc-1")
    p.pull("pc-1")
    p.assert_converged()
    assert p.sql(p.cloud, "select count(*) from patients where phone like '%9' and notes = 'recalled'") == [(200,)]
    # the same row twice in one transaction: listed and cut level by level
    with psycopg.connect(p.nodes["pc-1"]) as conn:
        conn.execute("update patients set phone = 'a' where id between 1 and 3")
        conn.execute("update patients set phone = 'b' where id = 2")
    two = _whole_plan(p, "pc-1")
    assert not two.grouped and [(s.op, s.count) for s in two.steps] == [("U", 3), ("U", 1)]
    p.push("pc-1")
    assert p.sql(p.cloud, "select id, phone from patients where id <= 3 order by 1") == [(1, "a"), (2, "b"), (3, "a")]


def test_single_row_transactions_on_different_rows_are_planned_from_their_groups(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name, phone) select g, 'p' || g, '0' || g from generate_series(1, 50) g")
    p.sql(p.cloud, "insert into encounters (id, patient_id, summary) select g, g, 's' || g from generate_series(1, 50) g")
    p.pull("pc-1")
    with psycopg.connect(p.nodes["pc-1"], autocommit=True) as conn:  # one row per transaction, every row once
        for i in range(1, 21):
            conn.execute("insert into patients (id, name) values (%s, 'walk-in')", (100 + i,))
            conn.execute("update patients set phone = %s where id = %s", (f"04{i}", i))
            conn.execute("update patients set notes = 'seen' where id = %s", (20 + i,))  # another column set
            conn.execute("update encounters set summary = 'revised' where id = %s", (i,))
            conn.execute("delete from encounters where id = %s", (30 + i,))
    plan = _whole_plan(p, "pc-1")
    assert plan.grouped and plan.ids == []
    assert [(s.table, s.op, s.count, s.columns) for s in plan.steps] == [
        ("public.patients", "I", 20, None), ("public.patients", "U", 20, ("phone",)),
        ("public.patients", "U", 20, ("notes",)), ("public.encounters", "U", 20, ("summary",)),
        ("public.encounters", "D", 20, None)]
    # each change is staged once, under its own step (the two patients' updates told apart by their columns)
    assert _staged(p, "pc-1", plan) == [(n, 20, 20) for n in range(1, 6)]
    assert _whole_plan(p, "pc-1", "runs").grouped is False  # in the source's order they are 100 runs
    done = p.push("pc-1")
    assert (done["changes"], done["transactions"], done["conflicts"]) == (100, 100, 0)
    p.pull("pc-1")
    p.assert_converged(("patients", "encounters"))
    assert p.sql(p.cloud, "select count(*) from patients where notes = 'seen'") == [(20,)]
    # a row changed twice (inserted, then updated) and a key changed: listed, not grouped
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (500, 'new')")
    p.sql(p.nodes["pc-1"], "update patients set phone = '1' where id = 500")
    assert not _whole_plan(p, "pc-1").grouped
    p.push("pc-1")
    p.sql(p.nodes["pc-1"], "update patients set id = 501 where id = 500")
    assert not _whole_plan(p, "pc-1").grouped
    p.push("pc-1")
    p.pull("pc-1")
    p.assert_converged(("patients", "encounters"))


def test_a_row_changed_by_many_transactions_is_pushed_as_its_net_change(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name, phone) select g, 'p' || g, '0' from generate_series(1, 3) g")
    p.pull("pc-1")
    with psycopg.connect(p.nodes["pc-1"], autocommit=True) as conn:  # a counter, as every pgbench transaction has
        for i in range(1, 11):
            with conn.transaction():
                conn.execute("update patients set phone = %s where id = 1", (f"a{i}",))
                conn.execute("update patients set phone = %s, notes = %s where id = 2", (f"b{i}", f"n{i}"))
                conn.execute("insert into encounters (id, patient_id, summary) values (%s, 3, 'seen')", (i,))
    plan = _whole_plan(p, "pc-1", "net")
    assert plan.mode == "net" and plan.grouped and plan.changes == 30
    assert sorted((s.table, s.op, s.count, s.entries) for s in plan.steps) == [
        ("public.encounters", "I", 10, 10), ("public.patients", "U", 1, 10), ("public.patients", "U", 1, 10)]
    assert sorted(_staged(p, "pc-1", plan)) == [(1, 1, 1), (2, 1, 1), (3, 10, 10)]  # each row once
    assert _whole_plan(p, "pc-1").mode == "merged" and not _whole_plan(p, "pc-1").grouped  # levels, listed
    done = p.push("pc-1")
    assert (done["changes"], done["transactions"], done["conflicts"]) == (30, 10, 0)
    assert type(done["changes"]) is int  # (`--json` prints a number)
    # the cloud journals each row's net change: its first base and its last values
    assert p.sql(p.cloud_owner, "select pk::text, ccsync.changed(new, old)::text, ccsync.changed(old, new)::text "
                                "from ccsync.journal where origin = 'pc-1' and op = 'U' order by 1") == [
        ('{"id": 1}', '{"phone": "0"}', '{"phone": "a10"}'),
        ('{"id": 2}', '{"notes": null, "phone": "0"}', '{"notes": "n10", "phone": "b10"}')]
    p.pull("pc-1")
    p.assert_converged()
    # a row whose changes change different columns: the changes one by one (levels of a listed plan)
    p.sql(p.nodes["pc-1"], "update patients set phone = 'x' where id = 1")
    p.sql(p.nodes["pc-1"], "update patients set notes = 'y' where id = 1")
    assert _whole_plan(p, "pc-1", "net").mode == "merged"
    p.push("pc-1")
    p.pull("pc-1")
    p.assert_converged()


def _net_scenario(p) -> list:
    """Chains of updates that the net plan must not take as one change, pushed; what the push left."""
    p.sql(p.cloud, "insert into patients (id, name, phone) select g, 'p' || g, '0' from generate_series(1, 3) g")
    p.pull("pc-1")
    seen = []
    node = p.nodes["pc-1"]
    for conflicting in (3, 2):
        if conflicting == 2:  # the cloud changes row 2 before the PC's chain reaches it: the first base fails
            p.sql(p.cloud, "update patients set phone = 'cloud' where id = 2")
        with psycopg.connect(node, autocommit=True) as conn:
            for i in range(1, 4):
                conn.execute("update patients set phone = %s where id in (1, %s)", (f"pc{conflicting}.{i}", conflicting))
                if conflicting == 3 and i == 1:  # row 3 changed between its changes without a journal entry (as a
                    with conn.transaction():  # pull applies): its next change does not start from the last one's values
                        conn.execute("select set_config('ccsync.apply', 'on', true)")
                        conn.execute("update patients set phone = 'between' where id = 3")
        done = p.push("pc-1")
        seen.append(((done["changes"], done["transactions"], done["conflicts"]),
                     p.rows(p.cloud), p.conflicts(p.cloud)))
    return seen


@pytest.mark.one_version  # how a chunk is cut
@pytest.mark.parametrize("policy", ["manual", "latest-wins"])
def test_a_net_change_that_would_differ_from_the_changes_one_by_one_is_not_taken(make_practice, monkeypatch, policy):
    fast = _net_scenario(make_practice(policy=policy))
    monkeypatch.setenv("CCSYNC_REFERENCE", "1")
    reference = _net_scenario(make_practice(policy=policy))
    assert fast == reference
    assert all(counts[2] > 0 for (counts, _, _) in fast)  # (each chain meets conflicts, change by change)
