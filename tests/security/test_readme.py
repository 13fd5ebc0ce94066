"""The README's roles section, run as a DBA would run it: every statement of its two blocks, on real servers.

The cloud and the PC are two databases of the test server, each owned by its own role; the statements run in a
shell with the README's variables set, `ccsync` and `psql` on the PATH. Afterwards the application writes on both
sides with its own role and the PC's service carries the writes each way.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.fix_sync import APP, LOCAL, OWNER, SCHEMA, as_role, ensure_role, new_database

pytestmark = pytest.mark.one_version

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PC_ROLE = "ccsync_pc_reception"


def block(name: str) -> list[str]:
    """The statements between <!-- name:begin --> and <!-- name:end -->, comments and blank lines left out."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name}:begin -->\n```\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert found, f"README.md has no {name} block"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in found.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture
def dba(databases, pg):
    """What the DBA starts from: a cloud database with the practice's tables, and an empty PC database, each
    owned by its owner; the application's role exists on the server."""
    cloud = new_database(databases, "cloud", OWNER)
    with psycopg.connect(cloud, autocommit=True) as conn:
        conn.execute(SCHEMA)
    pc = new_database(databases, "pc", LOCAL)
    ensure_role(pg, APP)
    psql = Path(pg.bindir) / "psql"
    env = {**os.environ, "CLOUD_OWNER": cloud, "PC_OWNER": pc, "PC_CLOUD": as_role(cloud, PC_ROLE),
           "PC_PASSWORD": "a password for the PC",
           "PATH": f"{Path(sys.executable).parent}:{psql.parent if psql.exists() else '/usr/bin'}:{os.environ['PATH']}"}
    yield env
    with psycopg.connect(pg.dsn(), autocommit=True) as su:  # the PC role is the server's: gone with its grants
        databases.drop_all()
        databases.names.clear()
        su.execute(f"drop role if exists {PC_ROLE}")


def run(env: dict, line: str) -> None:
    done = subprocess.run(["bash", "-c", line], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"


def converge_with_the_service(env: dict, line: str) -> None:
    """Start `ccsync run` as the README does; the application's writes on each side reach the other."""
    service = subprocess.Popen(["bash", "-c", f"exec {line}"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    cloud_app, pc_app = as_role(env["CLOUD_OWNER"], APP), as_role(env["PC_OWNER"], APP)
    try:
        with psycopg.connect(cloud_app, autocommit=True) as conn:
            conn.execute("insert into patients (id, name) values (1, 'written on the cloud')")
        with psycopg.connect(pc_app, autocommit=True) as conn:
            conn.execute("insert into patients (id, name) values (2, 'written on the PC')")
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(cloud_app) as c, psycopg.connect(pc_app) as n:
                both = [x.execute("select id from patients order by id").fetchall() for x in (c, n)]
            if both == [[(1,), (2,)], [(1,), (2,)]]:
                break
            assert service.poll() is None, service.communicate()[1]
            assert time.monotonic() < deadline, f"not converged: {both}"
            time.sleep(0.2)
    finally:
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=60)
    assert service.returncode == 0, err


def test_the_readme_roles_give_a_working_cloud_pc_and_application(dba):
    *setup, service = block("roles")
    assert service.startswith("ccsync run")
    for line in setup:
        run(dba, line)
    converge_with_the_service(dba, service)
    with psycopg.connect(as_role(dba["CLOUD_OWNER"], APP)) as app:  # and nothing on ccsync for the application
        assert app.execute("select has_schema_privilege('ccsync', 'usage')").fetchone()[0] is False


def test_the_readme_sql_grants_do_what_pc_add_and_grant_do(dba):
    """The SQL variant in place of `pc add` and `grant`, the rest as in the first block."""
    cli_lines = block("roles")
    sql_lines = block("grants-sql")
    replaced = [line for line in cli_lines if not re.match(r"(printf .*\| )?ccsync (pc add|grant) ", line)]
    cloud_done = max(i for i, line in enumerate(replaced) if "$CLOUD_OWNER" in line)
    pc_installed = next(i for i, line in enumerate(replaced) if line.startswith("ccsync install --dsn \"$PC_OWNER\""))
    order = (replaced[:cloud_done + 1] + [x for x in sql_lines if "$CLOUD_OWNER" in x]
             + replaced[cloud_done + 1:pc_installed + 1] + [x for x in sql_lines if "$PC_OWNER" in x]
             + replaced[pc_installed + 1:])
    assert len(order) == len(cli_lines) - 3 + len(sql_lines)
    *setup, service = order
    for line in setup:
        run(dba, line)
    converge_with_the_service(dba, service)
