"""No PC can harm another through the cloud, and no application can switch capture off (issue 14).

One test per attack of issue 14, each made with the attacker's own role on real servers: each is refused or
has no effect, and pc-2's data, journal, position and conflicts are what they were (the changes made in the
open, such as a row pc-1 pushes, still reach pc-2 like any other).
"""

from __future__ import annotations

import psycopg
import pytest

from reconciler import sync
from reconciler.config import Settings
from reconciler.errors import CcsyncError
from tests.fix_pg import Databases
from tests.fix_sync import APP, Practice, as_role, deployment_pc, ensure_role, on_node

pytestmark = pytest.mark.one_version  # privileges and the engine's SQL, the same on every supported version


@pytest.fixture(scope="module")
def p(pg):
    """A cloud and two PCs; pc-2 has an open conflict and a local edit it has not pushed."""
    databases = Databases(pg)
    p = Practice(databases, nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name, phone) select g, 'p' || g, 'base' from generate_series(1, 20) g")
    p.sync_all()
    p.sql(p.apps["pc-2"], "update patients set phone = 'pc-2' where id = 1")
    p.sql(p.cloud, "update patients set phone = 'cloud' where id = 1")
    p.sync("pc-2")
    assert [c[:2] for c in p.conflicts(p.cloud)] == [("update_update", "pc-2")]
    p.sql(p.apps["pc-2"], "update patients set notes = 'not pushed yet' where id = 2")
    yield p
    databases.drop_all()


def pc1(p) -> psycopg.Connection:
    """pc-1's reconciler on the cloud, with its own role: what an attacker on pc-1 holds."""
    return psycopg.connect(p.pcs["pc-1"].cloud, autocommit=True)


def pc2_state(p) -> dict:
    node, owner = p.nodes["pc-2"], p.cloud_owner
    return {
        "rows": [p.rows(node, t) for t in ("patients", "encounters")],
        "journal": p.sql(node, "select id, origin, table_name, op::text, pk::text, old::text, new::text "
                               "from ccsync.journal order by id"),
        "position": p.sql(owner, "select push_snapshot::text, push_window::text, push_done_upto, "
                                 "pulled_snapshot::text, role, install_id from ccsync.nodes where name = 'pc-2'"),
        "conflicts": p.sql(owner, "select id, kind, status, resolution, resolved_by, local_row::text "
                                  "from ccsync.conflicts where node = 'pc-2' order by id"),
        "cloud journal": p.sql(owner, "select id, origin, table_name, op::text, pk::text, target "
                                      "from ccsync.journal order by id"),
    }


def refused(conn: psycopg.Connection, query: str, params=None) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(query, params)


def test_1_a_pc_cannot_pass_its_changes_off_as_another_pcs(p):
    """A PC's journal says a change is pc-2's: the cloud stamps it with the role's node, so pc-2 takes it."""
    node = p.nodes["pc-1"]
    with psycopg.connect(node, autocommit=True) as conn, conn.transaction():
        conn.execute("select set_config('ccsync.apply', 'on', true)")  # the row, journaled by hand as pc-2's
        conn.execute("insert into patients (id, name) values (101, 'says it is from pc-2')")
        conn.execute("insert into ccsync.journal (hlc, origin, table_name, op, pk, new) select ccsync.hlc_next(), "
                     "'pc-2', 'public.patients', 'I', jsonb_build_object('id', t.id), to_jsonb(t) "
                     "from patients t where t.id = 101")
    p.push("pc-1")
    with pc1(p) as cloud, cloud.transaction():  # and straight on the cloud, naming pc-2 as its origin
        cloud.execute("select set_config('ccsync.origin', 'pc-2', true), set_config('ccsync.apply', 'on', true)")
        cloud.execute("insert into patients (id, name) values (102, 'written on the cloud as pc-2')")
    assert p.sql(p.cloud_owner, "select pk ->> 'id', origin from ccsync.journal where table_name = 'public.patients' "
                                "and pk ->> 'id' in ('101', '102') order by 1") == [("101", "pc-1"), ("102", "pc-1")]
    before = pc2_state(p)
    p.pull("pc-2")
    taken = "select id, name from patients where id in (101, 102) order by id"
    assert p.sql(p.nodes["pc-2"], taken) == p.sql(p.cloud, taken) != []  # pc-2 took both: no silent difference
    after = pc2_state(p)
    assert (after["journal"], after["conflicts"]) == (before["journal"], before["conflicts"])


def test_2_a_pc_cannot_move_another_pcs_push_position(p):
    before = pc2_state(p)
    with pc1(p) as cloud:
        refused(cloud, "update ccsync.nodes set push_snapshot = pg_current_snapshot() where name = 'pc-2'")
        cloud.execute("select ccsync.push_store(pg_current_snapshot(), true, null)")  # moves pc-1's own only
        cloud.execute("select ccsync.report_pulled(pg_current_snapshot())")
    assert pc2_state(p) == before
    sync.init(p.settings("pc-1"), force=True)  # (pc-1 set its own position astray: it starts over)
    p.push("pc-2")  # pc-2's edit made before the attack is not lost
    assert p.sql(p.cloud, "select notes from patients where id = 2") == [("not pushed yet",)]


def test_3_a_pc_cannot_close_another_pcs_conflicts(p):
    before = pc2_state(p)
    [(cid,)] = p.sql(p.cloud_owner, "select id from ccsync.conflicts where node = 'pc-2' and status = 'open'")
    with pc1(p) as cloud:
        refused(cloud, "update ccsync.conflicts set status = 'resolved', resolution = 'kept cloud', "
                       "resolved_by = 'Dr Forged', resolved_at = now() where id = %s", (cid,))
        refused(cloud, "delete from ccsync.conflicts where id = %s", (cid,))
        refused(cloud, "insert into ccsync.conflicts (node, table_name, pk, kind) "
                       "values ('pc-2', 'public.patients', '{\"id\": 3}', 'update_update')")
    assert pc2_state(p) == before


def test_4_a_pc_cannot_delete_cloud_journal_entries_another_pc_has_not_pulled(p):
    p.sql(p.cloud, "update patients set phone = 'for pc-2 to pull' where id = 4")
    before = pc2_state(p)
    with pc1(p) as cloud:
        refused(cloud, "delete from ccsync.journal")
        refused(cloud, "truncate ccsync.journal")
        refused(cloud, "update ccsync.journal set table_name = 'public.nope'")
        refused(cloud, "update ccsync.prune_horizon set txid = pg_current_xact_id()")
        # the pruning a pull does: a PC's role prunes nothing younger than the retentions, whatever it asks
        assert cloud.execute("select ccsync.prune(0, 0)").fetchone()[0] == 0
    assert pc2_state(p) == before
    p.pull("pc-2")
    assert p.sql(p.nodes["pc-2"], "select phone from patients where id = 4") == [("for pc-2 to pull",)]


def test_5_a_pc_cannot_write_a_journal_entry_that_stops_the_others(p):
    before = pc2_state(p)
    with pc1(p) as cloud:
        refused(cloud, "insert into ccsync.journal (hlc, origin, table_name, op, pk) "
                       "values (1, 'cloud', 'public.nope', 'T', null)")
        for call in ("select ccsync.journal_for_node('public.nope', '{\"id\": 1}')",
                     "select ccsync.record_conflict('public.nope', '{\"id\": 1}', 'update_update', '{}', null, null, "
                     "null, null, 1, 1, null)"):
            with pytest.raises(psycopg.Error, match="public.nope is not tracked on the cloud"):
                cloud.execute(call)
        # the insert both record functions share is theirs alone: no PC records past their checks
        refused(cloud, "select ccsync.insert_conflict('public.nope', '{}', 'refused', '{}', null, null, null, null, 1, "
                       "null, null, null, null)")
    node = p.nodes["pc-1"]  # an entry for a table nobody has, in pc-1's own journal: its own push stops there
    p.sql(node, "insert into ccsync.journal (hlc, origin, table_name, op, pk, new) values (ccsync.hlc_next(), 'pc-1', "
                "'public.nope', 'I', '{\"id\": 1}', '{\"id\": 1}')")
    with pytest.raises(CcsyncError, match="public.nope is not tracked on the cloud"):
        p.push("pc-1")
    assert pc2_state(p) == before
    p.pull("pc-2")  # the others go on
    p.sql(node, "delete from ccsync.journal where table_name = 'public.nope'")


def test_6_a_pc_cannot_hold_a_sumehr_claim_forever(p):
    """A claim goes through ccsync.sumehr_claim only: at most 600 s, and it ends with the claiming session."""
    p.sql(p.cloud_owner, "insert into ccsync.sumehr_state (patient, latest_version, state) values ('606', 1, 'pending')")
    before = pc2_state(p)
    with pc1(p) as cloud:
        refused(cloud, "update ccsync.sumehr_state set claimed_by = 'pc-1', claimed_until = 'infinity'")
        refused(cloud, "insert into ccsync.sumehr_state (patient, state) values ('607', 'up_to_date')")
        refused(cloud, "insert into ccsync.sumehr_claims (patient, node, claim, backend_pid, backend_role, "
                       "claimed_until) values ('606', 'pc-1', gen_random_uuid(), 1, 10, 'infinity')")
        with pytest.raises(psycopg.Error, match="at most 600 seconds"):
            cloud.execute("select * from ccsync.sumehr_claim('606', 1e9)")
        claim = cloud.execute("select claim, busy from ccsync.sumehr_claim('606', 600)").fetchone()
        assert claim[0] is not None and not claim[1]
    with psycopg.connect(p.pcs["pc-2"].cloud, autocommit=True) as pc2:  # pc-1's session ended: so did its claim
        again = pc2.execute("select claim, busy from ccsync.sumehr_claim('606', 600)").fetchone()
        assert again[0] is not None and not again[1]
    assert pc2_state(p) == before


def test_7_the_application_cannot_switch_capture_off(p):
    """ccsync.bulk, ccsync.origin and ccsync.apply, set by the application (or by a PC's role on the cloud),
    switch nothing off: every write is journaled, with the origin of where it was made."""
    switches = ("select set_config('ccsync.bulk', 'on', false), set_config('ccsync.origin', 'pc-2', false), "
                "set_config('ccsync.apply', 'on', false)")
    writes = ["insert into patients (id, name) values ({k}, 'bypass')", "update patients set phone = 'bypass' "
              "where id = {k}", "insert into encounters (id, patient_id) values ({k}, {k})",
              "delete from encounters where id = {k}"]
    for dsn, key in ((p.cloud, 201), (p.apps["pc-1"], 202), (p.pcs["pc-1"].cloud, 203)):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(switches)
            for w in writes:
                conn.execute(w.format(k=key))
    journaled = "select origin, table_name, op::text from ccsync.journal where pk ->> 'id' = %s order by id"
    expected = [("public.patients", "I"), ("public.patients", "U"), ("public.encounters", "I"),
                ("public.encounters", "D")]
    assert p.sql(p.cloud_owner, journaled, ("201",)) == [("cloud", *e) for e in expected]
    assert p.sql(p.nodes["pc-1"], journaled, ("202",)) == [("pc-1", *e) for e in expected]
    assert p.sql(p.cloud_owner, journaled, ("203",)) == [("pc-1", *e) for e in expected]
    before = pc2_state(p)
    p.sync("pc-1")
    p.sync("pc-2")
    written = "select ccsync_row::text from patients ccsync_row where id between 201 and 203 order by id"
    assert p.sql(p.nodes["pc-2"], written) == p.sql(p.cloud, written) and len(p.sql(p.cloud, written)) == 3
    assert pc2_state(p)["conflicts"] == before["conflicts"]


def test_a_decision_pushed_by_a_pc_is_stamped_with_that_pc(p):
    """Any PC's panel may decide a conflict (a person there looked at it); the cloud records which PC pushed the
    decision, whatever its record says."""
    from reconciler import conflicts

    p.sql(p.apps["pc-1"], "update patients set phone = 'pc-1' where id = 5")
    p.sql(p.cloud, "update patients set phone = 'cloud 5' where id = 5")
    p.sync("pc-1")
    [c] = [c for c in on_node(p.nodes["pc-1"], conflicts.list_conflicts) if c["pk"] == {"id": 5}]
    p.sql(p.nodes["pc-1"], "update ccsync.conflicts set decided_on = 'pc-2' where id = %s", (c["id"],))
    on_node(p.nodes["pc-1"], conflicts.resolve, c["id"], "cloud", by="Dr Peeters")
    p.sync("pc-1")
    assert p.sql(p.cloud_owner, "select status, resolved_by, decided_on from ccsync.conflicts where id = %s",
                 (c["id"],)) == [("resolved", "Dr Peeters", "pc-1")]
