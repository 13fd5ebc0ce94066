"""The engine's invariants on real servers: order, atomicity, convergence, housekeeping and bad input."""

import random

import psycopg
import pytest

import reconciler
from reconciler.engine import housekeeping
from reconciler import sync
from reconciler.errors import CcsyncError


def test_parent_and_child_in_one_transaction_arrive_together(practice):
    p = practice
    with psycopg.connect(p.nodes["pc-1"]) as conn:
        conn.execute("insert into patients (id, name) values (10, 'parent')")
        conn.execute("insert into encounters (id, patient_id, summary) values (100, 10, 'child')")
        conn.execute("update patients set name = 'parent v2' where id = 10")
    assert p.push("pc-1")["transactions"] == 1
    p.assert_converged()
    # and the reverse on delete: child first, then parent, in one transaction
    with psycopg.connect(p.nodes["pc-1"]) as conn:
        conn.execute("delete from encounters where id = 100")
        conn.execute("delete from patients where id = 10")
    p.push("pc-1")
    p.assert_converged()


def test_primary_key_change_and_truncate_replicate(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'a'), (2, 'b')")
    p.pull("pc-1")
    p.sql(p.nodes["pc-1"], "update patients set id = 3 where id = 1")
    p.sync("pc-1")
    assert p.sql(p.cloud, "select id from patients order by 1") == [(2,), (3,)]
    p.sql(p.cloud_owner, "truncate encounters, patients")
    p.pull("pc-1")
    p.assert_converged()
    assert p.rows(p.nodes["pc-1"]) == []


def test_every_type_survives_push_and_pull(make_practice):
    p = make_practice(nodes=())
    ddl = """
        create type mood as enum ('calm', 'l''angoissé');
        create table typed (id uuid primary key, n numeric, ts timestamptz, d date, iv interval, b bytea,
                            a int[], j json, jb jsonb, m mood, ms mood[], t text, f float8,
                            c char(3), v varchar(8), bo boolean, r real, lt timestamp, tm time, tz timetz,
                            ip inet, money2 numeric(10, 2), si smallint)
    """
    p.sql(p.cloud_owner, ddl)
    p.sql(p.cloud_owner, "select ccsync.track('typed'::regclass)")
    p.add_node("pc-1")  # creates the table (and the enum type) on the node from the cloud's definition
    row = ("0b7e5c7c-8c9f-4f61-9d3a-2f1b6d1e0a11", "3.14159265358979323846264338327950288", "2026-03-01 12:34:56.789+01",
           "2024-02-29", "1 day 02:03:04.5", b"\x00\xff'", [1, None], '{"z": 1,  "a": 2}', '{"k": [1.10]}', "l'angoissé",
           ["calm", "l'angoissé"], "Zoë \"<script>\" 患者", 0.1,
           "ab", "é'\\x", True, 1.5e-7, "2026-03-01 23:59:59.999999", "07:30", "07:30:00+05:30", "10.1.2.3/16", "12.50", -7)
    special = ("1f4ad6d3-1a7e-4a27-9a53-2a1e3c0b9d01", "NaN", "infinity", "-infinity", "-1 mons +3 days", b"", [], "[]",
               '"s"', "calm", [], "", float("nan"), "a  ", "", False, float("-inf"), "-infinity", "24:00", "00:00-12",
               "::1", "-0.01", 32767)
    values = "(" + ", ".join(["%s"] * 10 + ["%s::mood[]"] + ["%s"] * 12) + ")"
    p.sql(p.nodes["pc-1"], f"insert into typed values {values}, {values}", row + special)
    p.sql(p.nodes["pc-1"], "set timezone = 'Asia/Tokyo'; update typed set ts = ts + interval '1 microsecond'")
    p.sync("pc-1")
    p.assert_converged(tables=("typed",))  # the PC's rows, exactly (a char(3) read as char(1) would differ)
    p.add_node("pc-2")
    p.sql(p.cloud, "update typed set t = t || ' ✓', n = n * 2, c = 'z', r = r * 2, tz = tz + interval '1 minute'")
    for node in p.nodes:
        p.sync(node)
    p.assert_converged(tables=("typed",))
    assert p.sql(p.nodes["pc-2"], "select j::text from typed order by t desc")[0][0] == '{"z": 1,  "a": 2}'
    # every value came through, not only the same on every side: compared with what was written
    assert p.sql(p.cloud, "select c, v, bo, r, lt::text, tm::text, tz::text, ip::text, money2::text, si, f::text, n::text "
                          "from typed order by t desc") == [
        ("z  ", "é'\\x", True, 3e-7, "2026-03-01 23:59:59.999999", "07:30:00", "07:31:00+05:30", "10.1.2.3/16", "12.50",
         -7, "0.1", "6.28318530717958647692528676655900576"),
        ("z  ", "", False, float("-inf"), "-infinity", "24:00:00", "00:01:00-12", "::1/128", "-0.01", 32767, "NaN", "NaN")]
    # a push of updates that go the set-wise way on the cloud, every plain column changed on the node
    p.sql(p.nodes["pc-1"], "update typed set v = v || '!', bo = not bo, r = r + 1, lt = lt - interval '1 day', "
                           "tm = tm - interval '1 hour', ip = '192.168.0.1', money2 = money2 + 0.01, si = si - 1, "
                           "d = d + 1, iv = iv * 2, b = b || '\\x01'::bytea")
    p.sync("pc-1")
    for node in p.nodes:
        p.sync(node)
    p.assert_converged(tables=("typed",))
    assert p.sql(p.cloud, "select v, money2::text, si, tm::text from typed order by t desc") == [
        ("é'\\x!", "12.51", -8, "06:30:00"), ("!", "0.00", 32766, "23:00:00")]
    assert p.conflicts(p.cloud) == []


def test_out_of_order_commit_is_pushed(practice):
    p = practice
    first = psycopg.connect(p.nodes["pc-1"])
    first.execute("insert into patients (id, name) values (1, 'began first')")  # lower journal id, not committed
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (2, 'committed first')")
    p.push("pc-1")
    first.commit()
    first.close()
    p.push("pc-1")
    assert p.sql(p.cloud, "select id from patients order by 1") == [(1,), (2,)]


def test_out_of_order_commit_is_pulled(practice):
    p = practice
    first = psycopg.connect(p.cloud)
    first.execute("insert into patients (id, name) values (1, 'began first')")
    p.sql(p.cloud, "insert into patients (id, name) values (2, 'committed first')")
    p.pull("pc-1")
    first.commit()
    first.close()
    p.pull("pc-1")
    p.assert_converged()


def test_a_cloud_change_never_overwrites_a_local_change_not_yet_pushed(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name, phone, notes) values (1, 'a', '1', 'n')")
    p.pull("pc-1")
    p.sql(p.nodes["pc-1"], "update patients set phone = 'local' where id = 1")
    p.sql(p.cloud, "update patients set notes = 'cloud' where id = 1")
    result = p.pull("pc-1")
    assert result["skipped"] == 1
    assert p.sql(p.nodes["pc-1"], "select phone, notes from patients")[0] == ("local", "n")
    p.push("pc-1")  # the push decides the row; the skipped cloud change comes back by refresh
    assert p.sql(p.nodes["pc-1"], "select phone, notes from patients")[0] == ("local", "cloud")
    p.assert_converged()


def test_seeded_random_offline_edits_converge_with_every_conflict_recorded(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2", "pc-3"))
    p.sql(p.cloud, "insert into patients (id, name, phone, notes) select g, 'p' || g, '0', '0' from generate_series(1, 40) g")
    p.sync_all()
    rng = random.Random(20261126)
    edits = {}  # (row, column) -> set of databases that changed it
    for dsn_name, dsn in [("cloud", p.cloud), *p.nodes.items()]:
        for _ in range(25):
            row, col = rng.randint(1, 40), rng.choice(["phone", "notes"])
            value = f"{dsn_name}-{rng.randint(0, 10**6)}"
            p.sql(dsn, f"update patients set {col} = %s where id = %s", (value, row))
            edits.setdefault((row, col), set()).add(dsn_name)
        for _ in range(3):
            new_id = rng.randint(1000, 2000)
            p.sql(dsn, "insert into patients (id, name) values (%s, %s) on conflict do nothing", (new_id, dsn_name))
    for _ in range(3):
        p.sync_all()
    p.assert_converged()
    # every (row, column) changed by the cloud and a node, or by two nodes, must have produced a conflict
    # for every node whose change was not the first to reach the cloud
    recorded = {(int(pk.split(":")[1].strip(" }")), node) for _, node, _, pk, cols in p.conflicts(p.cloud, "open")}
    for (row, col), who in edits.items():
        nodes = who - {"cloud"}
        if "cloud" in who:
            for n in nodes:
                assert (row, n) in recorded, f"conflict on patient {row} {col} from {n} not recorded"
        elif len(nodes) > 1:
            assert sum((row, n) in recorded for n in nodes) >= len(nodes) - 1
    # and the nodes all show the same conflicts
    for dsn in p.nodes.values():
        assert p.conflicts(dsn) == p.conflicts(p.cloud)


# -- housekeeping -----------------------------------------------------------------------------------
def test_pushed_entries_leave_the_node_journal(practice):
    p = practice
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) select g, 'x' from generate_series(1, 10) g")
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 10
    p.push("pc-1")
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 0


def test_cloud_prunes_what_every_node_pulled_and_a_node_behind_is_told_to_init(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'a')")
    p.pull("pc-1")
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        assert housekeeping.prune(cloud, retention=0, max_retention=10**9) == 0  # pc-2 has not pulled yet
    p.pull("pc-2")
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        assert housekeeping.prune(cloud, retention=0, max_retention=10**9) >= 1
    p.sql(p.cloud, "insert into patients (id, name) values (2, 'b')")
    p.pull("pc-1")
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        assert housekeeping.prune(cloud, retention=0, max_retention=0) >= 1  # forced: pc-2 never pulled row 2
    with pytest.raises(CcsyncError, match="too far behind.*ccsync init --force"):
        p.pull("pc-2")
    sync.init(p.settings("pc-2"), force=True)
    p.assert_converged()


# -- bad input --------------------------------------------------------------------------------------
def test_schema_drift_is_refused_and_the_batch_stays_pending(practice):
    p = practice
    p.sql(p.nodes["pc-1"], "alter table patients add column extra text")
    reconciler.track(p.nodes["pc-1"], ["patients"])  # as the README says after an ALTER TABLE
    p.sql(p.nodes["pc-1"], "insert into patients (id, name, extra) values (1, 'a', 'only here')")
    with pytest.raises(CcsyncError, match=r"schema drift on public.patients \(only on the node: extra\)"):
        p.push("pc-1")
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 1
    assert "schema drift" in p.sql(p.nodes["pc-1"], "select last_error from ccsync.state")[0][0]
    p.sql(p.cloud_owner, "alter table patients add column extra text")
    reconciler.track(p.cloud_owner, ["patients"])
    p.push("pc-1")
    assert p.sql(p.cloud, "select extra from patients")[0][0] == "only here"


def test_a_row_the_cloud_rejects_becomes_a_refusal_record_and_the_queue_moves_on(practice):
    p = practice
    p.sql(p.cloud_owner, "alter table patients add constraint phone_short check (length(phone) < 5)")
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (1, 'ok')")
    p.sql(p.nodes["pc-1"], "insert into patients (id, name, phone) values (2, 'bad', '123456789')")
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (3, 'after')")
    assert p.sync("pc-1")["pushed"]["refused"] == 1
    assert p.sql(p.cloud, "select id from patients order by 1") == [(1,), (3,)]
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 0
    p.assert_converged()  # the refused row left the PC too: it is in the record
    [(kind, reason, phone)] = p.sql(p.cloud_owner, "select kind, reason, changes -> 0 -> 'new' ->> 'phone' "
                                                   "from ccsync.conflicts")
    assert (kind, phone) == ("refused", "123456789") and "123456789" not in reason  # the value in the record only
    assert reconciler.refusal_reasons.english(reason) == ("the cloud refused this PC's new row in public.patients: it "
                                                          "breaks the cloud's check phone_short on public.patients")


def test_untracked_on_cloud_and_uninitialized_node_are_clear_errors(make_practice):
    p = make_practice(nodes=())
    p.add_node("pc-1", init=False)
    with pytest.raises(CcsyncError, match="not registered on the cloud: run `ccsync init` first"):
        p.push("pc-1")
    with pytest.raises(CcsyncError, match="never been initialized"):
        p.pull("pc-1")
    with pytest.raises(CcsyncError, match="installed as 'pc-1', not as 'cloud'"):
        sync.push(type(p.settings("pc-1"))(local=p.nodes["pc-1"], cloud=p.nodes["pc-1"]))
