"""The sync service on real servers: it follows the cloud, survives outages and stops cleanly."""

import json
import os
import signal
import subprocess
import sys

import psycopg
import pytest

pytestmark = pytest.mark.one_version

import reconciler
from reconciler import sync
from reconciler.config import Settings
from reconciler.devtools.pgserver import PgServer
from tests.fix_pg import Databases
from tests.fix_sync import SCHEMA, PcDb, deployment_cloud, deployment_pc, wait_for

STATUS_KEYS = {"mode", "node", "pending_push", "pending_pull", "open_conflicts", "hub_failures", "last_sync_at",
               "last_error", "use"}


def one(dsn, query, params=None):
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(query, params).fetchone()[0]


def ccsync(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)


class Node:
    """A PC: its database and, when started, its `ccsync run` subprocess; `cloud` is the cloud as its reconciler
    reaches it (the PC's role), `app` as the practice application does."""

    def __init__(self, pc: PcDb, app: str):
        self.local, self.cloud, self.app = pc.local, pc.cloud, app
        self.app_local = pc.app  # the application on this PC's database
        local, cloud = self.local, self.cloud
        self.env = {**os.environ, "CCSYNC_LOCAL_DSN": local, "CCSYNC_CLOUD_DSN": cloud}
        self.proc = None

    def start(self, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", "run", "--max-backoff", "0.5", *extra],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_for(lambda: self.status()["service"] and self.status()["mode"] == "online", 60, "service online")
        return self

    def status(self):
        return reconciler.status.current(Settings(local=self.local, cloud=self.cloud))

    def status_cli(self, env=None):
        result = ccsync("status", "--json", env=env or self.env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def mode(self):
        return one(self.local, "select mode from ccsync.state")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            out, err = self.proc.communicate(timeout=60)
            self.log = err
            return self.proc.returncode
        return None


@pytest.fixture
def setup(databases):
    """A cloud database on the shared server and one initialized node, with the service stopped at the end."""
    cloud = deployment_cloud(databases, SCHEMA, ["patients", "encounters"])
    node = Node(deployment_pc(databases, cloud, "pc-1", label="pc1"), cloud.app)
    yield node
    node.stop(signal.SIGKILL)
    print(getattr(node, "log", ""))


@pytest.fixture
def own_cloud(databases, pg, tmp_path):
    """A cloud on a server of its own, which the test can stop and start."""
    server = PgServer(tmp_path / "cloud", bindir=pg.bindir, settings={"fsync": "off"}).init().start()
    cloud = deployment_cloud(Databases(server), SCHEMA, ["patients", "encounters"])
    node = Node(deployment_pc(databases, cloud, "pc-1", label="pc1"), cloud.app)
    yield server, node
    node.stop(signal.SIGKILL)
    server.stop("immediate")


def test_a_cloud_change_reaches_the_node_without_any_command(setup):
    node = setup.start()
    with psycopg.connect(node.app, autocommit=True) as c:
        c.execute("insert into patients (id, name) values (1, 'from the cloud')")
    wait_for(lambda: one(node.local, "select count(*) from patients") == 1, 10, "the cloud change on the node")


def test_local_writes_are_pushed_without_any_command(setup):
    node = setup.start()
    with psycopg.connect(node.local, autocommit=True) as c:
        for i in range(20):
            c.execute("insert into patients (id, name) values (%s, 'local')", (i,))
    wait_for(lambda: one(node.app, "select count(*) from patients") == 20, 10, "the local writes on the cloud")
    wait_for(lambda: one(node.local, "select count(*) from ccsync.journal") == 0, 10, "an empty journal")


def test_a_second_service_is_refused(setup):
    setup.start()
    second = ccsync("run", env=setup.env)
    assert second.returncode == 1
    assert "another `ccsync run` already serves node 'pc-1'" in second.stderr
    assert "Traceback" not in second.stderr
    assert setup.proc.poll() is None  # the first one goes on


def test_cloud_stopped_and_restarted_goes_offline_synchronizing_online_and_loses_nothing(own_cloud):
    server, node = own_cloud
    node.start()
    assert node.status()["use"] == "cloud"
    server.stop("immediate")
    wait_for(lambda: node.mode() == "offline", 30, "offline mode")
    doc = node.status()
    assert (doc["mode"], doc["pending_pull"], doc["use"]) == ("offline", None, "local")
    with psycopg.connect(node.local, autocommit=True) as c:
        for i in range(50):
            c.execute("insert into patients (id, name) values (%s, 'written offline')", (i,))
    assert node.status()["pending_push"] == 50
    server.start()
    wait_for(lambda: node.mode() == "online", 60, "online again")
    wait_for(lambda: one(node.app, "select count(*) from patients") == 50, 20, "the offline writes on the cloud")
    assert node.stop() == 0
    log = node.log
    assert log.count("working offline") == 1  # each transition logged once, not once per retry
    assert log.index("working offline") < log.rindex("synchronizing") < log.rindex("online")


def test_sigterm_during_a_large_push_then_restart_converges(setup):
    with psycopg.connect(setup.local, autocommit=True) as c:
        c.execute("insert into patients (id, name, balance) select g, 'p', 0 from generate_series(1, 10000) g")
        for _ in range(3):
            c.execute("update patients set balance = balance + 1")
    setup.env["CCSYNC_CHUNK"] = "1000"
    setup.proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run"], env=setup.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: one(setup.app, "select count(*) from patients") > 0, 60, "the push under way")
    assert setup.stop() == 0
    assert "Traceback" not in setup.log
    setup.start()
    wait_for(lambda: one(setup.local, "select count(*) from ccsync.journal") == 0, 120, "the backlog pushed")
    assert one(setup.app, "select count(*) from patients") == 10000
    assert one(setup.app, "select sum(balance) from patients") == 30000  # nothing applied twice


def test_login_pulls_what_the_node_lacks_and_says_so(setup):
    with psycopg.connect(setup.app, autocommit=True) as c:
        c.execute("insert into patients (id, name) select g, 'new' from generate_series(1, 30) g")
    result = ccsync("login", "--json", env=setup.env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["mode"], doc["pending_pull"], doc["pulled"]) == ("online", 30, 30)
    assert one(setup.local, "select count(*) from patients") == 30
    again = json.loads(ccsync("login", "--json", env=setup.env).stdout)
    assert (again["pending_pull"], again["pulled"]) == (0, 0)


def test_login_offline_exits_zero_with_mode_offline(setup):
    env = {**setup.env, "CCSYNC_CLOUD_DSN": "host=127.0.0.1 port=1 dbname=x user=u"}
    result = ccsync("login", "--json", env=env)
    assert result.returncode == 0
    assert json.loads(result.stdout)["mode"] == "offline"


def test_status_json_keys_and_values(setup):
    doc = setup.status_cli()
    assert STATUS_KEYS <= set(doc)
    assert (doc["mode"], doc["node"], doc["service"], doc["use"]) == ("online", "pc-1", False, "cloud")
    with psycopg.connect(setup.local, autocommit=True) as c:
        c.execute("insert into patients (id, name) values (1, 'x')")
    with psycopg.connect(setup.app, autocommit=True) as c:
        c.execute("insert into patients (id, name) values (2, 'y'), (3, 'z')")
    doc = setup.status()
    assert (doc["pending_push"], doc["pending_pull"], doc["open_conflicts"]) == (1, 2, 0)
    assert (doc["hub_configured"], doc["hub_failures"], doc["hub_waiting"]) == (False, None, None)  # no [hub]
    setup.start()
    wait_for(lambda: setup.status()["pending_push"] == 0 and setup.status()["pending_pull"] == 0, 20, "in sync")
    doc = setup.status()
    assert (doc["mode"], doc["service"], doc["use"], doc["last_error"]) == ("online", True, "cloud", None)
    assert doc["last_sync_at"] is not None
    offline = {**setup.env, "CCSYNC_CLOUD_DSN": "host=127.0.0.1 port=1 dbname=x user=u"}
    setup.stop()
    doc = setup.status_cli(offline)
    assert (doc["mode"], doc["pending_pull"], doc["use"]) == ("offline", None, "local")


def test_database_for_app_follows_the_mode(setup):
    apps = {"app_local": setup.app_local, "app_cloud": setup.app}  # the application's own DSNs ([app])
    cfg = Settings(local=setup.local, cloud=setup.cloud, **apps)
    # no service: the cloud while it answers (never a stale replica then), the replica when it does not
    assert reconciler.service.database_for_app(cfg) == setup.app
    assert reconciler.status.current(cfg)["use"] == "cloud"
    gone = Settings(local=setup.local, cloud="host=127.0.0.1 port=1 dbname=nothing", **apps)
    assert reconciler.service.database_for_app(gone) == setup.app_local
    assert reconciler.status.current(gone)["use"] == "local"
    setup.start()
    assert reconciler.service.database_for_app(cfg) == setup.app


@pytest.mark.parametrize("where", ["connect", "sync"])
def test_a_sigterm_hidden_by_the_error_of_the_rollback_after_it_still_stops_the_service(where, monkeypatch):
    """SIGTERM in the middle of a query: unwinding the transaction can raise "another command is already in
    progress", which replaces the Stop; the service must stop all the same, not go on as if the cloud was lost."""
    from reconciler import service as service_mod

    svc = object.__new__(service_mod.Service)
    svc.stopping, svc.sides, svc.tasks, svc.max_backoff, svc.home = False, None, [], 0.01, None
    calls = []

    def interrupted():
        calls.append(where)
        if len(calls) > 1:
            raise AssertionError("the service went on after SIGTERM")
        try:
            svc._stop(signal.SIGTERM, None)
        finally:
            raise psycopg.OperationalError("sending query failed: another command is already in progress")

    monkeypatch.setattr(service_mod, "set_mode", lambda *a, **k: False)
    monkeypatch.setattr(service_mod.time, "sleep", lambda s: None)
    if where == "connect":
        monkeypatch.setattr(svc, "_connect", interrupted, raising=False)
    else:
        monkeypatch.setattr(svc, "_connect", lambda: None, raising=False)
        monkeypatch.setattr(svc, "_synchronize", lambda progress=None: interrupted(), raising=False)
        monkeypatch.setattr(service_mod, "Stored", lambda *a, **k: type("P", (), {"finish": lambda self: None})())
        svc.local = None
    with pytest.raises(service_mod.Stop):
        svc._loop()
    assert calls == [where]
