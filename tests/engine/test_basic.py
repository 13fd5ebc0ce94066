"""Push and pull, the everyday path."""

from reconciler import status, sync


def test_init_copies_the_cloud(make_practice):
    p = make_practice(nodes=())
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 50) g")
    p.sql(p.cloud, "insert into encounters (id, patient_id, summary) select g, g, 'e' from generate_series(1, 50) g")
    p.add_node("pc-1")
    p.assert_converged()


def test_local_change_reaches_cloud_and_other_node(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (1, 'Zoë')")
    result = p.push("pc-1")
    assert result["changes"] == 1 and result["transactions"] == 1
    assert p.rows(p.cloud) == p.rows(p.nodes["pc-1"])
    p.pull("pc-2")
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 0


def test_cloud_change_reaches_node_and_is_not_echoed(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'A')")
    p.sql(p.cloud, "update patients set phone = '123' where id = 1")
    p.pull("pc-1")
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 0
    assert p.push("pc-1")["changes"] == 0


SEEN = """
create table seen_settings (jit text, work_mem text);
create function seen_settings() returns trigger language plpgsql security definer as $$
begin
    insert into public.seen_settings values (current_setting('jit'), current_setting('work_mem'));
    return null;
end $$;
create trigger seen_settings after insert or update on patients for each row execute function seen_settings();
"""


def test_a_sync_applies_without_jit_and_with_its_work_memory_whatever_the_server_sets(make_practice):
    """A push or pull plans windows the planner cannot estimate well (journal images, staged chunks): where the server
    has JIT, it compiled them for about a second per catch-up (the cloud converged 1.5 s after a pgbench load
    instead of 0.2 s on Debian's PostgreSQL 15). The sync's own sessions turn it off, whatever the server or the
    role says; the application's sessions keep theirs."""
    p = make_practice(nodes=("pc-1",))
    for dsn in (p.cloud_owner, p.nodes["pc-1"]):  # and the server's default for every session of the database
        p.sql(dsn, SEEN)
        db = p.sql(dsn, "select current_database()")[0][0]
        p.sql(p.databases.server.dsn(), f'alter database "{db}" set jit = on')
        p.sql(p.databases.server.dsn(), f'alter database "{db}" set work_mem = \'1MB\'')
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) select g, 'pc ' || g from generate_series(1, 20) g")
    p.sql(p.cloud, "insert into patients (id, name) select g, 'cloud ' || g from generate_series(21, 40) g")
    for dsn in (p.cloud_owner, p.nodes["pc-1"]):
        assert p.sql(dsn, "select distinct jit, work_mem from seen_settings") == [("on", "1MB")]  # the application's
        p.sql(dsn, "truncate seen_settings")
    p.sync("pc-1")
    p.assert_converged()
    for dsn in (p.cloud_owner, p.nodes["pc-1"]):
        assert p.sql(dsn, "select count(*), array_agg(distinct jit), array_agg(distinct work_mem) from seen_settings"
                     ) == [(20, ["off"], ["64MB"])], dsn
    # the pull at a user's login, and the status's count of what the PC lacks, run in the same settings
    p.sql(p.nodes["pc-1"], "truncate seen_settings")
    p.sql(p.cloud, "update patients set name = name || '.' where id > 30")
    assert status.current(p.settings("pc-1"))["pending_pull"] == 10
    assert sync.login(p.settings("pc-1"))["pulled"] == 10
    assert p.sql(p.nodes["pc-1"], "select count(*), array_agg(distinct jit), array_agg(distinct work_mem) "
                                  "from seen_settings") == [(10, ["off"], ["64MB"])]
