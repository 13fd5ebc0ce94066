"""The upgrade order (the README's "Upgrading"): the cloud first, then each PC, services stopped. A PC whose
database or cloud is at another schema revision than its ccsync refuses with one line that says what to do,
and the README's steps, followed in order, bring every write across."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import cli
from reconciler.schema import HEAD
from tests.fix_pg import Databases
from tests.fix_sync import Practice

pytestmark = pytest.mark.one_version

ROOT = Path(__file__).resolve().parent.parent
OLDER = f"{int(HEAD) - 1:04d}"
NEWER = f"{int(HEAD) + 1:04d}"
CLOUD_COMMANDS = [["push"], ["pull"], ["sync"], ["login"], ["init", "--force"], ["sumehr", "publish"]]


def ccsync(practice, *args, node="pc-1"):
    env = {**os.environ, "CCSYNC_LOCAL_DSN": practice.nodes[node], "CCSYNC_CLOUD_DSN": practice.pcs[node].cloud}
    env.pop("CCSYNC_CONFIG", None)
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def stamp(practice, dsn, revision):
    """The revision a database says it is at (what an older or a newer ccsync would have left), set by its owner."""
    practice.sql(practice.owner(dsn), "update ccsync.alembic_version set version_num = %s", (revision,))


def one_line(proc) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "does not exist" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def shared(pg):
    databases = Databases(pg)
    yield Practice(databases)
    databases.drop_all()


@pytest.fixture
def cloud_at(shared):
    """The shared practice with its cloud stamped at a revision for one test."""
    def at(revision):
        stamp(shared, shared.cloud, revision)
        return shared
    yield at
    stamp(shared, shared.cloud, HEAD)


def in_process(practice, *args) -> str:
    """A command run in this process (fast); its error, which must be one line. The Sumehr publisher gets a HUB
    (nothing listens there): without one it stops before it looks at the cloud."""
    with tempfile.TemporaryDirectory() as folder:
        config = None
        if args[0] == "sumehr":
            config = os.path.join(folder, "ccsync.toml")
            with open(config, "w", encoding="utf-8") as f:
                f.write('[hub]\nendpoint = "http://127.0.0.1:1/hubservices/v3"\n')
        result = CliRunner().invoke(cli.main, list(args), env={"CCSYNC_LOCAL_DSN": practice.nodes["pc-1"],
                                                             "CCSYNC_CLOUD_DSN": practice.pcs["pc-1"].cloud,
                                                             "CCSYNC_CONFIG": config})
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit), result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_a_pc_newer_than_its_cloud_refuses_with_one_line_naming_the_order(cloud_at):
    practice = cloud_at(OLDER)
    for command in CLOUD_COMMANDS:
        line = in_process(practice, *command)
        assert f"the cloud database has ccsync schema {OLDER}, this ccsync needs {HEAD}" in line, command
        assert "ccsync install --dsn DSN --name cloud" in line and "the cloud first" in line, command
    assert "the cloud first" in one_line(ccsync(practice, "sync"))  # and so it looks in a terminal


def test_a_pc_older_than_its_cloud_refuses_until_ccsync_is_upgraded_on_it(cloud_at):
    practice = cloud_at(NEWER)
    for command in CLOUD_COMMANDS:
        line = in_process(practice, *command)
        assert f"the cloud database has ccsync schema {NEWER}, newer than this ccsync knows ({HEAD})" in line, command
        assert "upgrade ccsync on this machine" in line, command


def test_install_with_an_older_ccsync_than_the_database_refuses_and_changes_nothing(cloud_at):
    practice = cloud_at(NEWER)
    line = in_process(practice, "install", "--dsn", practice.cloud_owner, "--name", "cloud")
    assert f"has ccsync schema {NEWER}, newer than this ccsync knows" in line
    assert practice.sql(practice.cloud_owner, "select version_num from ccsync.alembic_version") == [(NEWER,)]


def test_the_service_says_why_it_cannot_sync_and_keeps_the_pc_working_offline(cloud_at):
    practice = cloud_at(NEWER)
    env = {**os.environ, "CCSYNC_LOCAL_DSN": practice.nodes["pc-1"], "CCSYNC_CLOUD_DSN": practice.pcs["pc-1"].cloud}
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run", "-v", "--max-backoff", "1"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "cannot sync with the cloud" in line or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert any(f"the cloud database has ccsync schema {NEWER}, newer than this ccsync knows" in s for s in seen), seen
    assert practice.sql(practice.nodes["pc-1"], "select mode from ccsync.state") == [("offline",)]


def previous_ccsync(tmp_path, head: str = HEAD) -> Path:
    """The source of the ccsync before schema `head` (the parent of the commit that brought it), from git."""
    introduced = subprocess.run(["git", "log", "-1", "--format=%H", f"-SHEAD = \"{head}\"", "--",
                                 "reconciler/schema/__init__.py"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
    assert introduced, f"no commit brought schema {head} (a shallow clone?)"
    tree = tmp_path / f"before-{head}"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", f"{introduced}^"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "ccsync_sql").symlink_to("sql")  # its SQL files, as its wheel names them
    return tree


def run_ccsync(tree: Path, *args, **env):
    """The ccsync of source tree `tree` (this one or an older one from git), run as a command."""
    env = {**os.environ, "PYTHONPATH": str(tree), **env}
    env.pop("CCSYNC_CONFIG", None)
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("skipped", [2, 3])
def test_a_database_that_skipped_releases_upgrades_to_head_and_captures(databases, tmp_path, skipped):
    """A cloud installed by a ccsync several schema revisions old, with a tracked table and one altered since it
    was tracked (its capture runs the dynamic path), upgraded by this ccsync in one step: each revision in
    between loads today's functions beside what the old ccsync left (a function whose parameters changed since
    must not make a call ambiguous), and both tables are captured afterwards."""
    older = previous_ccsync(tmp_path, f"{int(HEAD) - skipped + 1:04d}")
    cloud = databases.new("cloud")

    with psycopg.connect(cloud, autocommit=True) as conn:
        ok(run_ccsync(older, "install", "--dsn", cloud, "--name", "cloud"))
        conn.execute("create table patients (id int primary key, name text)")
        conn.execute("create table notes (id int primary key, body text)")
        ok(run_ccsync(older, "track", "--dsn", cloud, "patients", "notes"))
        conn.execute("alter table notes add column author text")
        assert f"-> {HEAD}" in ok(run_ccsync(ROOT, "install", "--dsn", cloud, "--name", "cloud"))
        conn.execute("insert into patients values (1, 'after the upgrade')")
        conn.execute("insert into notes values (1, 'after the upgrade', 'dr A')")
        journaled = conn.execute("select table_name, new from ccsync.journal where op = 'I' order by id").fetchall()
        assert journaled == [("public.patients", {"id": 1, "name": "after the upgrade"}),
                             ("public.notes", {"id": 1, "body": "after the upgrade", "author": "dr A"})]
        assert conn.execute("select count(*) from pg_proc where proname = 'capture_sql'").fetchone()[0] == 1
        # every tracked table's capture function written again as this ccsync writes it (revision 0016's settings)
        assert conn.execute("select array_agg(distinct p.proconfig::text) from ccsync.tracked as t "
                            "join pg_proc as p on p.oid = ccsync.capture_function(t.table_name)::regproc "
                            "where t.schema_name = 'public'").fetchone()[0] == [
            "{\"search_path=pg_catalog, pg_temp\",jit=off,work_mem=64MB}"]


def test_the_readme_upgrade_steps_in_order_bring_every_write_across(databases, tmp_path):
    """A practice set up by the previous ccsync (its schema revision, its data, a write waiting on the PC),
    upgraded as the README says: the services stopped, the cloud first, then the PC."""
    previous = previous_ccsync(tmp_path)
    cloud, pc = databases.new("cloud"), databases.new("pc")

    def run(tree: Path, *args):
        return run_ccsync(tree, *args, CCSYNC_LOCAL_DSN=pc, CCSYNC_CLOUD_DSN=cloud)

    def sql(dsn, query):
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query)
            return cur.fetchall() if cur.description else None

    # the previous ccsync: a cloud and a PC in sync, then a write on the PC while the service is stopped
    assert f"(schema {OLDER})" in ok(run(previous, "--version"))
    ok(run(previous, "install", "--dsn", cloud, "--name", "cloud"))
    sql(cloud, "create table patients (id int primary key, name text, phone text)")
    ok(run(previous, "track", "--dsn", cloud, "patients"))
    ok(run(previous, "install", "--dsn", pc, "--name", "pc-1"))
    ok(run(previous, "init"))
    sql(cloud, "insert into patients values (1, 'before the upgrade', null)")
    ok(run(previous, "sync"))
    sql(pc, "update patients set phone = 'written during the upgrade' where id = 1")
    # this ccsync on the PC before the cloud is upgraded: refused in one line, nothing moves
    assert "the cloud first" in one_line(run(ROOT, "sync"))
    # 1. the cloud first: its schema is really migrated
    assert f"schema {OLDER} -> {HEAD}" in ok(run(ROOT, "install", "--dsn", cloud, "--name", "cloud"))
    # 2. then the PC: refused until its own schema is upgraded, then what waited goes across
    assert f"the local database has ccsync schema {OLDER}" in one_line(run(ROOT, "sync"))
    assert f"schema {OLDER} -> {HEAD}" in ok(run(ROOT, "install", "--dsn", pc, "--name", "pc-1"))
    ok(run(ROOT, "sync"))
    assert sql(cloud, "select phone from patients where id = 1") == [("written during the upgrade",)]
    sql(cloud, "insert into patients values (2, 'after the upgrade', null)")
    ok(run(ROOT, "sync"))
    assert sql(pc, "select id, name, phone from patients order by id") == \
        sql(cloud, "select id, name, phone from patients order by id")
