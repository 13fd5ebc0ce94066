"""`ccsync demo`: the scenario ends as promised, and Ctrl-C leaves no process behind."""

import json
import signal
import subprocess
import sys

import psycopg

from reconciler.devtools.pgserver import PgServer, free_port


def demo_cmd(tmp_path, *extra):
    return [sys.executable, "-c", "import cli; cli.main()", "demo", "--dir", str(tmp_path / "demo"),
            "--panel-port", str(free_port()), "--hub-port", str(free_port()), *extra]


def test_demo_scenario_ends_with_the_conflict_the_sumehr_on_the_hub_and_both_sides_converged(tmp_path):
    proc = subprocess.run(demo_cmd(tmp_path, "--scenario-only", "--json", "--patients", "2000"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["conflicts"] >= 1 and result["conflict_kind"] == "update_update"
    assert result["hub_version"] >= 2  # the Sumehr written offline reached the simulator (checked there)
    assert result["converged"] is True
    out = proc.stdout + proc.stderr
    assert "panel: http://127.0.0.1:" in out and "password" in out


def test_ctrl_c_stops_every_process_and_leaves_the_data_consistent(tmp_path):
    proc = subprocess.Popen(demo_cmd(tmp_path, "--patients", "500"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "keeps running" in line:
            break
    assert any("done:" in line and "identical" in line for line in lines), "".join(lines)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode in (0, 1), rest
    assert "stopped; the data stays" in rest
    # nothing left running: the servers are stopped and restart cleanly with consistent data
    for name in ("cloud", "pc-reception"):
        assert not (tmp_path / "demo" / name / "postmaster.pid").exists()
    cloud = PgServer(tmp_path / "demo" / "cloud").start()
    pc = PgServer(tmp_path / "demo" / "pc-reception").start()
    try:
        query = "select md5(string_agg(t::text, ',' order by t::text)) from patients t"
        with psycopg.connect(cloud.dsn("practice")) as c, psycopg.connect(pc.dsn("practice")) as p:
            assert c.execute(query).fetchone() == p.execute(query).fetchone()
            assert p.execute("select count(*) from ccsync.journal").fetchone()[0] == 0
    finally:
        pc.stop("fast")
        cloud.stop("fast")
