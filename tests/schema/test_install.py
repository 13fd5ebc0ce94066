"""Installing, upgrading and uninstalling the ccsync schema."""

import psycopg
import pytest

import reconciler
from reconciler.schema import install as install_mod
from reconciler.errors import CcsyncError


def test_install_creates_schema_and_identity(dsn, conn):
    result = reconciler.install(dsn, "pc-reception")
    assert result == {"name": "pc-reception", "from_revision": None, "to_revision": reconciler.head(), "changed": True}
    assert conn.execute("select name from ccsync.identity").fetchone()[0] == "pc-reception"
    assert conn.execute("select version_num from ccsync.alembic_version").fetchone()[0] == reconciler.head()


def test_install_twice_changes_nothing(dsn, conn):
    reconciler.install(dsn, "cloud")
    snapshot = conn.execute(
        "select md5(string_agg(p.proname || pg_get_functiondef(p.oid), ',' order by p.proname)) "
        "from pg_proc p where p.pronamespace = 'ccsync'::regnamespace"
    ).fetchone()[0]
    again = reconciler.install(dsn, "cloud")
    assert again["changed"] is False
    assert conn.execute("select count(*) from ccsync.identity").fetchone()[0] == 1
    assert conn.execute(
        "select md5(string_agg(p.proname || pg_get_functiondef(p.oid), ',' order by p.proname)) "
        "from pg_proc p where p.pronamespace = 'ccsync'::regnamespace"
    ).fetchone()[0] == snapshot


def test_install_refuses_a_second_identity(dsn):
    reconciler.install(dsn, "cloud")
    with pytest.raises(CcsyncError, match="already installed as 'cloud'"):
        reconciler.install(dsn, "pc-1")


def test_upgrade_from_first_revision_to_head(dsn, conn):
    reconciler.install(dsn, "pc-1", revision="0001")
    assert install_mod.current_revision(conn) == "0001"
    conn.execute("create table t (id int primary key, v text)")
    conn.execute("select ccsync.track('t'::regclass)")
    # an entry as the capture trigger of revision 0001 wrote it (the function files loaded here are today's)
    conn.execute("insert into ccsync.journal (hlc, origin, table_name, op, pk, new) "
                 "values (1, 'pc-1', 'public.t', 'I', '{\"id\": 1}', '{\"id\": 1, \"v\": \"before upgrade\"}')")
    result = reconciler.install(dsn, "pc-1")
    assert result["from_revision"] == "0001" and result["to_revision"] == reconciler.head()
    conn.execute("insert into t values (2, 'after upgrade')")
    rows = conn.execute("select pk->>'id', new->>'v' from ccsync.changes order by id").fetchall()
    assert rows == [("1", "before upgrade"), ("2", "after upgrade")]


def test_upgrade_from_0005_takes_away_the_setting_that_switched_capture_off(dsn, conn):
    reconciler.install(dsn, "cloud", revision="0005")
    conn.execute("create table t (id int primary key, v text)")
    conn.execute("select ccsync.track('t'::regclass)")
    reconciler.install(dsn, "cloud")
    defs = [r[0] for r in conn.execute("select pg_get_triggerdef(oid) from pg_trigger where tgrelid = 't'::regclass "
                                       "and tgname like 'ccsync%'")]
    assert defs and not any("ccsync.bulk" in d for d in defs)
    with conn.transaction():
        conn.execute("select set_config('ccsync.bulk', 'on', true)")
        conn.execute("insert into t values (1, 'a session that sets ccsync.bulk')")
        conn.execute("update t set v = 'still journaled'")
    rows = conn.execute("select op::text, pk->>'id' from ccsync.changes order by id").fetchall()
    assert rows == [("I", "1"), ("U", "1")]


def test_install_rejects_invalid_name(dsn):
    with pytest.raises(CcsyncError, match="invalid name"):
        reconciler.install(dsn, "Bad Name; drop table x")


def test_uninstall_removes_triggers_and_schema(dsn, conn):
    reconciler.install(dsn, "cloud")
    conn.execute('create table "Odd Table" (id int primary key)')
    reconciler.track(dsn, ['"Odd Table"'])
    reconciler.uninstall(dsn)
    assert conn.execute("select to_regnamespace('ccsync')").fetchone()[0] is None
    assert conn.execute("select count(*) from pg_trigger where tgname like 'ccsync%'").fetchone()[0] == 0
    conn.execute('insert into "Odd Table" values (1)')  # the table still works without ccsync


def test_uninstall_refuses_with_unpushed_changes_unless_forced(dsn, conn):
    reconciler.install(dsn, "pc-1")
    conn.execute("create table t (id int primary key)")
    reconciler.track(dsn, ["t"])
    conn.execute("insert into t values (1)")
    with pytest.raises(CcsyncError, match="1 journaled change"):
        reconciler.uninstall(dsn)
    assert conn.execute("select count(*) from ccsync.journal").fetchone()[0] == 1
    reconciler.uninstall(dsn, force=True)
    assert conn.execute("select to_regnamespace('ccsync')").fetchone()[0] is None


def test_wrong_dsn_is_one_clear_line():
    with pytest.raises(CcsyncError, match="invalid database DSN"):
        reconciler.install("this is not = a dsn = at all password=secret", "cloud")


def test_unreachable_server_is_one_clear_line():
    with pytest.raises(CcsyncError, match="cannot connect to the database") as info:
        reconciler.install("host=127.0.0.1 port=1 dbname=x user=u password=secret", "cloud")
    assert "secret" not in str(info.value)


def test_install_as_unprivileged_user_is_refused_cleanly(dsn, conn, pg):
    conn.execute("create role ccsync_weak login")
    conn.execute("revoke create on schema public from public")
    conn.execute("revoke create on database " + psycopg.sql.Identifier(conn.info.dbname).as_string(conn) + " from public")
    weak = dsn.replace("user=postgres", "user=ccsync_weak")
    with pytest.raises(CcsyncError):
        reconciler.install(weak, "cloud")
    assert conn.execute("select to_regnamespace('ccsync')").fetchone()[0] is None
    conn.execute("drop role ccsync_weak")


def test_the_schema_head_constant_is_the_alembic_head():
    from reconciler.schema import HEAD

    assert HEAD == reconciler.head(), "reconciler/schema/__init__.py HEAD must name the newest revision"


def test_a_database_at_an_older_revision_is_refused_with_the_command_that_upgrades_it(dsn):
    reconciler.install(dsn, "pc-1", revision="0004")
    with pytest.raises(reconciler.CcsyncError) as err:
        reconciler.tables(dsn)
    assert "ccsync schema 0004" in str(err.value) and "ccsync install --dsn DSN --name pc-1" in str(err.value)
