"""The upgrade order (the README's "Upgrading"): the cloud first, then each PC, services stopped. A PC whose
database or cloud is at another schema revision than its ccsync refuses with one line that says what to do,
and the README's steps, followed in order, bring every write across."""

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import cli
from reconciler.schema import HEAD
from tests.fix_pg import Databases
from tests.fix_sync import Practice

pytestmark = pytest.mark.one_version

OLDER = f"{int(HEAD) - 1:04d}"
NEWER = f"{int(HEAD) + 1:04d}"
CLOUD_COMMANDS = [["push"], ["pull"], ["sync"], ["login"], ["init", "--force"], ["sumehr", "publish"]]


def ccsync(practice, *args, node="pc-1"):
    env = {**os.environ, "CCSYNC_LOCAL_DSN": practice.nodes[node], "CCSYNC_CLOUD_DSN": practice.cloud}
    env.pop("CCSYNC_CONFIG", None)
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def stamp(practice, dsn, revision):
    """The revision a database says it is at (what an older or a newer ccsync would have left)."""
    practice.sql(dsn, "update ccsync.alembic_version set version_num = %s", (revision,))


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
    """A command run in this process (fast); its error, which must be one line."""
    result = CliRunner().invoke(cli.main, list(args), env={"CCSYNC_LOCAL_DSN": practice.nodes["pc-1"],
                                                         "CCSYNC_CLOUD_DSN": practice.cloud, "CCSYNC_CONFIG": None})
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
    line = in_process(practice, "install", "--dsn", practice.cloud, "--name", "cloud")
    assert f"has ccsync schema {NEWER}, newer than this ccsync knows" in line
    assert practice.sql(practice.cloud, "select version_num from ccsync.alembic_version") == [(NEWER,)]


def test_the_service_says_why_it_cannot_sync_and_keeps_the_pc_working_offline(cloud_at):
    practice = cloud_at(NEWER)
    env = {**os.environ, "CCSYNC_LOCAL_DSN": practice.nodes["pc-1"], "CCSYNC_CLOUD_DSN": practice.cloud}
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


def test_the_readme_upgrade_steps_in_order_bring_every_write_across(make_practice):
    """Upgrading, as the README says: stop the services; the cloud first; then each PC; start the services."""
    p = make_practice(nodes=("pc-1", "pc-2"))

    def run(*args, node="pc-1"):
        return CliRunner().invoke(cli.main, list(args), env={"CCSYNC_LOCAL_DSN": p.nodes[node],
                                                           "CCSYNC_CLOUD_DSN": p.cloud, "CCSYNC_CONFIG": None})

    p.sql(p.cloud, "insert into patients (id, name) values (1, 'before the upgrade')")
    p.sync_all()
    # what the previous ccsync left: every database at the previous revision, a write waiting on pc-1
    for dsn in (p.cloud, *p.nodes.values()):
        stamp(p, dsn, OLDER)
    p.sql(p.nodes["pc-1"], "update patients set phone = 'written during the upgrade' where id = 1")
    # 1. the new ccsync on a PC before the cloud: refused, nothing moves
    assert "the cloud first" in run("sync").stderr
    # 2. the cloud first
    cloud = run("install", "--dsn", p.cloud, "--name", "cloud")
    assert cloud.exit_code == 0 and f"schema {OLDER} -> {HEAD}" in cloud.stdout, cloud.output
    # 3. each PC: until its own schema is upgraded it refuses, then it syncs what waited
    refused = run("sync")
    assert refused.exit_code == 1 and f"the local database has ccsync schema {OLDER}" in refused.stderr
    for node in ("pc-1", "pc-2"):
        upgraded = run("install", "--dsn", p.nodes[node], "--name", node, node=node)
        assert upgraded.exit_code == 0, upgraded.output
        synced = run("sync", node=node)
        assert synced.exit_code == 0, synced.output
    assert run("sync", node="pc-2").exit_code == 0
    p.assert_converged()
    assert p.sql(p.nodes["pc-2"], "select phone from patients where id = 1") == [("written during the upgrade",)]
