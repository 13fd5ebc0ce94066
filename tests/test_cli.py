"""The command line: exit codes, one-line errors, JSON output, and help on every command."""

import json
import subprocess
import sys

import psycopg
import pytest
from click.testing import CliRunner

import cli

pytestmark = pytest.mark.one_version  # behaviour that does not depend on the PostgreSQL version


def run(*args, input=None):
    result = CliRunner().invoke(cli.main, list(args), input=input, catch_exceptions=False)
    return result


def all_commands(group=cli.main, prefix=()):
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_install_track_tables_json_uninstall(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute('create table "Odd Table" (id int primary key, v text)')
    assert run("install", "--dsn", dsn, "--name", "pc-1").exit_code == 0
    again = run("install", "--dsn", dsn, "--name", "pc-1")
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert run("track", "--dsn", dsn, "--policy", "node-wins", 'public."Odd Table"').exit_code == 0
    doc = json.loads(run("tables", "--dsn", dsn, "--json").output)
    assert [(d["table"], d["policy"], d["primary_key"]) for d in doc] == [('public."Odd Table"', "node-wins", ["id"])]
    assert run("untrack", "--dsn", dsn, 'public."Odd Table"').exit_code == 0
    assert run("uninstall", "--dsn", dsn).exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["track", "--policy", "sometimes", "t"], "unknown policy 'sometimes'"),
        (["track", "nope"], "unknown table 'nope'"),
        (["track", "nopk"], "has no primary key"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_nonzero_exit(dsn, args, message):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("create table t (id int primary key)")
        c.execute("create table nopk (a int)")
    assert run("install", "--dsn", dsn, "--name", "pc-1").exit_code == 0
    proc = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", args[0], "--dsn", dsn, *args[1:]],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_unreachable_dsn_exits_nonzero_without_traceback_or_password():
    proc = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", "tables", "--dsn",
         "postgresql://u:hunter2@127.0.0.1:1/x"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: cannot connect to the database")
    assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr


def test_track_without_install_says_to_install(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("create table t (id int primary key)")
    result = CliRunner().invoke(cli.main, ["track", "--dsn", dsn, "t"])
    assert result.exit_code == 1
    assert "run `ccsync install" in result.output


def test_a_push_of_net_changes_prints_whole_numbers_and_progress_lines(practice):
    """A row changed by several transactions goes to the cloud as its net change (patients unreferenced): the
    counts still say how many changes, as JSON numbers, and a log without a terminal gets progress lines."""
    from reconciler import sync
    from reconciler.progress import Bar

    p = practice
    p.alter("alter table encounters drop constraint encounters_patient_id_fkey", "encounters")
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'a'), (2, 'b')")
    p.pull("pc-1")
    for v in ("v1", "v2", "v3"):
        p.sql(p.apps["pc-1"], "update patients set phone = %s where id = 1", (v,))
    pc = p.pcs["pc-1"]
    out = run("push", "--json", "--local", pc.local, "--cloud", pc.cloud)
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["changes"] == 3 and type(doc["changes"]) is int
    for v in ("w1", "w2"):
        p.sql(p.apps["pc-1"], "update patients set phone = %s where id = 2", (v,))
    assert sync.push(pc.settings(), progress=Bar(interval=0))["changes"] == 2  # (stderr is no terminal here)
    assert p.rows(p.cloud) == p.rows(pc.local)
