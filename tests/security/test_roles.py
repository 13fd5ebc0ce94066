"""The roles of a deployment (design-0.2 §3): what `ccsync pc add` and `ccsync grant` give, the one-line errors
that say what is missing, and a PC's identity on the cloud (a second installation with the same name)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from click.testing import CliRunner

import cli
import reconciler
from reconciler import sync
from reconciler.config import Settings
from reconciler.errors import CcsyncError
from tests.fix_sync import APP, LOCAL, OWNER, SCHEMA, as_role, ensure_role, new_database, pc_role

pytestmark = pytest.mark.one_version


@pytest.mark.parametrize("name", ["cloud", "pc-1"])
def test_track_leaves_a_non_owner_application_role_able_to_write(databases, name):
    owner = new_database(databases, "app", OWNER if name == "cloud" else LOCAL)
    ensure_role(databases.server, APP)
    reconciler.install(owner, name)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(SCHEMA)  # the DBA's own grants, as before ccsync
        conn.execute("grant select, insert, update, delete on patients, encounters to practice_app")
    reconciler.track(owner, ["patients", "encounters"])
    with psycopg.connect(as_role(owner, APP), autocommit=True) as app:
        app.execute("insert into patients (id, name) values (1, 'a'), (2, 'b')")
        app.execute("update patients set phone = '0470' where id = 1")
        app.execute("delete from patients where id = 2")
        assert app.execute("select has_schema_privilege('ccsync', 'usage')").fetchone()[0] is False
    with psycopg.connect(owner) as conn:
        assert conn.execute("select origin, op::text, pk ->> 'id' from ccsync.journal order by id").fetchall() == [
            (name, "I", "1"), (name, "I", "2"), (name, "U", "1"), (name, "D", "2")]


def test_a_role_registered_to_no_node_gets_one_line(practice):
    p = practice
    stray = ensure_role(p.databases.server, "ccsync_stray")
    with psycopg.connect(p.cloud_owner, autocommit=True) as conn:  # what the README of 0.5 told DBAs to grant
        conn.execute("grant usage on schema ccsync to ccsync_stray")
        conn.execute("grant select on all tables in schema ccsync to ccsync_stray")
    done = CliRunner().invoke(cli.main, ["push", "--local", p.nodes["pc-1"], "--cloud", as_role(p.cloud, stray)])
    assert done.exit_code == 1
    assert done.output == (
        "Error: the cloud database refused role 'ccsync_stray': permission denied for function node_register; the "
        "cloud's owner registers a PC's role and grants it what a PC needs with `ccsync pc add NODE --role "
        "ccsync_stray` (or sql/grants.sql)\n")
    # granted a PC's rights by hand but registered to no node, it is told so by the function it calls
    p.sql(p.cloud_owner, "select ccsync.grant_pc('ccsync_stray')")
    done = CliRunner().invoke(cli.main, ["push", "--local", p.nodes["pc-1"], "--cloud", as_role(p.cloud, stray)])
    assert done.exit_code == 1
    assert done.output == ("Error: the role ccsync_stray is not registered to a node on the cloud: the cloud's owner "
                           "registers it with `ccsync pc add NODE --role ccsync_stray`\n")


def test_a_missing_privilege_names_the_database_the_object_and_what_grants_it(practice):
    p = practice
    role = pc_role("pc-1")
    p.sql(p.cloud_owner, f"revoke select on ccsync.journal from {role}")
    with pytest.raises(CcsyncError) as cloud_side:
        p.pull("pc-1")
    assert str(cloud_side.value) == (
        f"the cloud database refused role '{role}': permission denied for table journal; the cloud's owner registers "
        f"a PC's role and grants it what a PC needs with `ccsync pc add NODE --role {role}` (or sql/grants.sql)")
    reconciler.pc_add(p.cloud_owner, "pc-1", role)  # the command it names
    p.pull("pc-1")
    with pytest.raises(CcsyncError) as local_side:
        sync.pull(Settings(local=p.apps["pc-1"], cloud=p.pcs["pc-1"].cloud))
    assert str(local_side.value) == (
        "this PC's database refused role 'practice_app': permission denied for schema ccsync; run ccsync here as the "
        "role that installed it (the node's apply role, the database owner)")


def test_a_second_installation_with_the_same_name_is_refused(practice, databases):
    """Issue 12 item 5: a PC installed again under a name in use (a clone) is refused, and nothing of it is lost."""
    p = practice
    p.sql(p.apps["pc-1"], "insert into patients (id, name) values (1, 'from the first pc-1')")
    p.push("pc-1")
    clone = new_database(databases, "clone", LOCAL)
    reconciler.install(clone, "pc-1")
    clone_settings = Settings(local=clone, cloud=p.pcs["pc-1"].cloud)
    with pytest.raises(CcsyncError, match='^another installation is already registered as node "pc-1" on the cloud: '
                                          "a second PC with the same name .a clone.. is refused"):
        sync.init(clone_settings)
    other = new_database(databases, "other", LOCAL)
    reconciler.install(other, "pc-7")
    with pytest.raises(CcsyncError, match='^this PC is installed as "pc-7", but its cloud role ccsync_pc_pc_1 is '
                                          'registered to node "pc-1"'):
        sync.init(Settings(local=other, cloud=p.pcs["pc-1"].cloud))
    p.sql(p.apps["pc-1"], "update patients set phone = 'still pc-1' where id = 1")
    p.sync("pc-1")  # the first installation goes on
    assert p.sql(p.cloud, "select phone from patients where id = 1") == [("still pc-1",)]
    # pc-1 was reinstalled: the owner says so, the new installation binds, the former one is refused from then on
    reconciler.pc_add(p.cloud_owner, "pc-1", pc_role("pc-1"), new_install=True)
    sync.init(clone_settings)
    with pytest.raises(CcsyncError, match="another installation is already registered"):
        p.sync("pc-1")
    assert p.rows(clone) == p.rows(p.cloud)


def test_pc_add_refuses_a_role_that_is_not_fit_for_a_pc(practice):
    p = practice
    with pytest.raises(CcsyncError, match="role postgres may do anything to ccsync"):
        reconciler.pc_add(p.cloud_owner, "pc-2", "postgres")
    with pytest.raises(CcsyncError, match='role ccsync_pc_pc_1 is already the role of node "pc-1"'):
        reconciler.pc_add(p.cloud_owner, "pc-2", pc_role("pc-1"))
    with pytest.raises(CcsyncError, match="role nobody_here does not exist: create it first"):
        reconciler.pc_add(p.cloud_owner, "pc-2", "nobody_here")
    with pytest.raises(CcsyncError, match="invalid node name"):
        reconciler.pc_add(p.cloud_owner, "PC 2; drop", "x")
    with pytest.raises(CcsyncError, match="not the cloud"):
        reconciler.pc_add(p.nodes["pc-1"], "pc-2", "x")


def test_pc_add_creates_the_login_role_with_its_password_hashed_and_moves_a_node_to_a_new_role(practice):
    p = practice
    role = f"ccsync_pc_made_{uuid.uuid4().hex[:8]}"
    done = CliRunner().invoke(cli.main, ["pc", "add", "pc-1", "--role", role, "--create-role", "--json",
                                         "--dsn", p.cloud_owner], input="a secret\n")
    assert done.exit_code == 0, done.output
    assert '"created_role": true' in done.output
    with psycopg.connect(as_role(p.cloud, "postgres"), autocommit=True) as su:
        stored = su.execute("select rolcanlogin, rolpassword from pg_authid where rolname = %s", (role,)).fetchone()
        assert stored[0] and stored[1].startswith("SCRAM-SHA-256$") and "a secret" not in stored[1]
        former = pc_role("pc-1")  # the node moved to the new role: the former one lost its grants
        assert su.execute("select has_schema_privilege(%s, 'ccsync', 'usage')", (former,)).fetchone()[0] is False
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'a')")
    sync.pull(Settings(local=p.nodes["pc-1"], cloud=as_role(p.cloud, role)))
    assert p.rows(p.nodes["pc-1"]) == p.rows(p.cloud)
    reconciler.pc_add(p.cloud_owner, "pc-1", pc_role("pc-1"))  # back (the role is shared by the run's tests)


def test_one_role_for_everything_still_syncs(databases):
    """A DBA's first try: the superuser everywhere. Its sessions are trusted with the node they name (no isolation
    between PCs then: the README says so)."""
    cloud, node = databases.new("cloud"), databases.new("pc")
    reconciler.install(cloud, "cloud")
    with psycopg.connect(cloud, autocommit=True) as conn:
        conn.execute(SCHEMA)
    reconciler.track(cloud, ["patients", "encounters"])
    reconciler.install(node, "pc-1")
    settings = Settings(local=node, cloud=cloud)
    sync.init(settings)
    with psycopg.connect(node, autocommit=True) as conn:
        conn.execute("insert into patients (id, name) values (1, 'from pc-1')")
    with psycopg.connect(cloud, autocommit=True) as conn:
        conn.execute("insert into patients (id, name) values (2, 'from the cloud')")
    sync.sync(settings)
    with psycopg.connect(cloud, autocommit=True) as conn:
        assert conn.execute("select pk ->> 'id', origin from ccsync.journal where table_name = 'public.patients' "
                            "order by id").fetchall() == [("2", "cloud"), ("1", "pc-1")]
        assert conn.execute("select name, role from ccsync.nodes").fetchall() == [("pc-1", None)]
    with psycopg.connect(node, autocommit=True) as conn:
        assert conn.execute("select count(*) from patients").fetchone()[0] == 2
        assert conn.execute("select count(*) from ccsync.journal").fetchone()[0] == 0
