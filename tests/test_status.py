"""The status light never lies: each state of the one rule, and the panel, `ccsync status` (human and --json),
`database_for_app()` and the Sumehr publisher agreeing on it, on real servers with a real `ccsync run`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

import cli
import reconciler
from reconciler import db, mode, reasons, service, status, sync
from reconciler.errors import NotInstalled, SchemaTooOld
from reconciler import panel_users as users
from reconciler.config import Settings
from reconciler.devtools.pgserver import PgServer
from reconciler.mode import FAILING, Facts, State, decide
from reconciler.progress import Progress
from reconciler.reasons import Reason
from reconciler.sumehr import publisher
from tests.fix_pg import Databases
from tests.fix_sync import APP, LOCAL, SCHEMA, deployment_cloud, deployment_pc, on_node, wait_for
from web import create_app

pytestmark = pytest.mark.one_version
SECRET = "a status test secret, long enough"


# -- the rule itself (no database) ---------------------------------------------------------------------------
facts_st = st.builds(Facts, service=st.booleans(), stored=st.sampled_from(["online", "synchronizing", "offline"]),
                     since=st.none(), reason=st.sampled_from([None, *Reason]), failures=st.integers(0, 10),
                     syncing=st.booleans())


def test_a_cloud_not_ready_is_known_by_where_it_was_opened_not_by_the_words_of_its_message(databases):
    bare = databases.new("bare")
    with pytest.raises(NotInstalled) as opened_as_cloud:
        db.open_cloud(bare)
    assert reasons.of(opened_as_cloud.value) == Reason.CLOUD_NOT_READY
    with pytest.raises(NotInstalled) as opened_as_local:
        db.open_local(bare)
    assert reasons.of(opened_as_local.value) == Reason.SYNC_ERROR
    # the same words raised where no cloud was opened: ccsync's own line, not the cloud's state
    assert reasons.of(SchemaTooOld("the cloud database has ccsync schema 0001")) == Reason.SYNC_ERROR


@given(facts=st.one_of(st.none(), facts_st), reachable=st.booleans())
def test_the_rule_is_green_only_when_everything_holds(facts, reachable):
    m = decide(facts, reachable=reachable if facts is None or not facts.service else None)
    if m.state == State.ONLINE:
        assert facts.service and facts.stored == "online" and not facts.syncing and facts.failures < FAILING
        assert (m.use, m.mode, m.reason) == ("cloud", "online", None)
    if facts is None:
        assert (m.state, m.reason) == (State.OFFLINE, Reason.LOCAL_DOWN)
    elif not facts.service:
        assert (m.state, m.reason) == (State.ATTENTION, Reason.SERVICE_STOPPED)
        assert m.use == ("cloud" if reachable else "local")  # never a stale replica while the cloud answers
    elif facts.stored == "offline" and facts.reason == Reason.SERVICE_STOPPED:  # a new service reaching the cloud
        assert (m.state, m.use, m.reason) == (State.SYNCHRONIZING, "local", None)
    elif facts.stored == "offline":
        assert m.state == State.OFFLINE and m.use == "local" and m.reason is not None
    elif facts.failures >= FAILING:
        assert (m.state, m.reason) == (State.ATTENTION, Reason.SYNC_FAILING)
    if m.state != State.ONLINE:
        assert m.reason is not None or m.state == State.SYNCHRONIZING
    assert m.use == "cloud" or m.mode != "online" or m.state == State.ATTENTION


# -- every door agrees ---------------------------------------------------------------------------------------
class Pc:
    def __init__(self, local: str, cloud: str, token: str, app_local: str, app_cloud: str):
        self.local, self.cloud, self.token = local, cloud, token
        self.app_local, self.app_cloud = app_local, app_cloud  # the application's own role on each side
        self.proc = None
        self.app = create_app({"SETTINGS": Settings(local=local, cloud=cloud), "SECRET_KEY": SECRET,
                               "TESTING": True, "STATUS_PROBE_TIMEOUT": 1})

    def settings(self, cloud: str | None = None, local: str | None = None) -> Settings:
        return Settings(local=local or self.local, cloud=cloud or self.cloud, app_local=self.app_local,
                        app_cloud=self.app_cloud)

    def start(self, cloud: str | None = None):
        env = {**os.environ, "CCSYNC_LOCAL_DSN": self.local, "CCSYNC_CLOUD_DSN": cloud or self.cloud}
        self.proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run", "--max-backoff", "0.5"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(self.served, 30, "the service")

    def served(self) -> bool:
        with psycopg.connect(self.local, autocommit=True) as conn:
            return mode.lock_holder(conn) is not None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.log = self.proc.communicate(timeout=60)[1]
        self.proc = None

    def agree(self, cloud: str | None = None, local: str | None = None) -> dict:
        """The state as every door tells it; fails when two disagree."""
        s = self.settings(cloud, local)
        doc = status.current(s, probe_timeout=1)
        cli_args = ["status", "--json", "--local", s.local, "--cloud", s.cloud]
        from_cli = json.loads(CliRunner().invoke(cli.main, cli_args, catch_exceptions=False).stdout)
        human = CliRunner().invoke(cli.main, cli_args[:1] + cli_args[2:], catch_exceptions=False).stdout
        app = self.app if local is None and cloud is None else create_app(
            {"SETTINGS": s, "SECRET_KEY": SECRET, "TESTING": True, "STATUS_PROBE_TIMEOUT": 1})
        response = app.test_client().get("/api/status", headers={"Authorization": f"Bearer {self.token}"})
        panel = response.get_json()
        dsn = service.database_for_app(s)
        for other in (from_cli, panel):
            for key in ("state", "mode", "use", "reason", "service"):
                assert other.get(key) == doc[key], (key, other, doc)
        assert dsn == (s.app_cloud if doc["use"] == "cloud" else s.app_local)
        if doc["node"] is not None:  # the publisher reads the node's database
            with psycopg.connect(s.local, autocommit=True) as node:
                assert publisher._offline(s, node) == (doc["mode"] == "offline")
        assert WORDS[doc["state"]] in human, human
        if doc["reason_text"]:
            assert doc["reason_text"].split(":")[0].split(";")[0][:40] in " ".join(human.split())
        return doc


WORDS = {"online": "online", "synchronizing": "synchronizing", "offline": "offline", "attention": "attention"}


@pytest.fixture(scope="module")
def pc(pg, tmp_path_factory):
    """A cloud on a server of its own (the tests stop it), a PC's database on the shared one, a panel user; as a
    deployment runs: the schema owner, the PC's role on the cloud, the application's role."""
    server = PgServer(tmp_path_factory.mktemp("status") / "cloud", bindir=pg.bindir, settings={"fsync": "off"})
    server.init().start()
    cloud = deployment_cloud(Databases(server), SCHEMA, ["patients", "encounters"])
    local_dbs = Databases(pg)
    deployed = deployment_pc(local_dbs, cloud, "pc-1", label="status_pc1")
    token = users.add(deployed.local, "robot", "a long enough password", token=True)["token"]
    node = Pc(deployed.local, deployed.cloud, token, deployed.app, cloud.app)
    node.server = server
    yield node
    node.stop()
    local_dbs.drop_all()
    server.stop("immediate")


def test_no_service_is_attention_and_the_application_uses_the_cloud_while_it_answers(pc):
    doc = pc.agree()
    assert (doc["state"], doc["reason"], doc["use"], doc["service"]) == ("attention", "service_stopped", "cloud", False)
    gone = "host=127.0.0.1 port=1 dbname=x user=u"
    doc = pc.agree(cloud=gone)
    assert (doc["state"], doc["use"], doc["mode"], doc["cloud_reason"]) == \
        ("attention", "local", "offline", "cloud_unreachable")
    assert "cannot be reached" in doc["reason_text"]


def test_online_synchronizing_offline_and_back_with_the_service(pc):
    pc.start()
    try:
        wait_for(lambda: status.current(pc.settings())["state"] == "online", 30, "online")
        doc = pc.agree()
        assert (doc["state"], doc["use"], doc["reason"], doc["last_error"]) == ("online", "cloud", None, None)

        # a large transaction pushed while the cloud's table is locked: synchronizing, with its progress
        with psycopg.connect(pc.cloud) as lock:  # (the PC's role may write the tracked tables: it may lock them)
            lock.execute("lock table patients in exclusive mode")
            with psycopg.connect(pc.local, autocommit=True) as c:
                c.execute("insert into patients (id, name) select g, 'p' || g from generate_series(1, 2000) g")
            wait_for(lambda: status.current(pc.settings())["state"] == "synchronizing", 30, "synchronizing")
            doc = pc.agree()
            assert doc["progress"]["what"] == "push" and doc["progress"]["total"] == 2000
            assert doc["use"] == "cloud"  # an online push of a large transaction: the cloud is current
        wait_for(lambda: status.current(pc.settings())["state"] == "online", 30, "online after the push")
        assert pc.agree()["progress"] is None

        pc.server.stop("immediate")
        try:
            wait_for(lambda: status.current(pc.settings(), probe_timeout=1)["state"] == "offline", 30, "offline")
            doc = pc.agree()
            assert (doc["reason"], doc["use"], doc["pending_pull"]) == ("cloud_unreachable", "local", None)
            assert doc["last_error_code"] == "cloud_unreachable" and "cannot be reached" in doc["last_error"]
            assert doc["state_since"] is not None
        finally:
            pc.server.start()
        wait_for(lambda: status.current(pc.settings())["state"] == "online", 60, "online again")
        runs = on_node(pc.local, reconciler.history.history, kind="offline")
        assert runs[0]["reason"] == "cloud_unreachable" and runs[0]["finished_at"] is not None
    finally:
        pc.stop()
    assert "Traceback" not in pc.log


def test_a_refused_login_is_offline_with_its_reason(pc):
    refused = re.sub(r"user=\S+", "user=nobody_here", pc.cloud)
    assert refused != pc.cloud
    pc.start(cloud=refused)
    try:
        wait_for(lambda: status.current(pc.settings(cloud=refused))["state"] == "offline", 30, "offline")
        doc = pc.agree(cloud=refused)
        assert (doc["reason"], doc["last_error_code"]) == ("cloud_refused", "cloud_refused")
        assert "refused this PC's login" in doc["last_error"]
        assert "nobody_here" not in doc["last_error"]  # the server's own words go to the log only
    finally:
        pc.stop()


def test_a_sync_failing_again_and_again_needs_attention(pc):
    with psycopg.connect(pc.local, autocommit=True) as c:
        c.execute("alter table encounters add column drift int")  # a column the cloud lacks: every push fails
    reconciler.track(pc.local, ["encounters"])  # (tracked again after the ALTER, as the README says)
    with psycopg.connect(pc.local, autocommit=True) as c:
        c.execute("insert into encounters (id, patient_id, summary) values (1, 1, 'x')")
    pc.start()
    try:
        wait_for(lambda: status.current(pc.settings())["state"] == "attention", 60, "attention")
        doc = pc.agree()
        assert doc["reason"] == "sync_failing" and doc["failures"] >= mode.FAILING
        assert doc["last_error_code"] == "sync_error" and doc["last_error"]
    finally:
        pc.stop()
        with psycopg.connect(pc.local, autocommit=True) as c:
            c.execute("delete from ccsync.journal where table_name = 'public.encounters'")
            c.execute("alter table encounters drop column drift")
        reconciler.track(pc.local, ["encounters"])
        with psycopg.connect(pc.local, autocommit=True) as c:
            c.execute("delete from encounters")
            c.execute("delete from ccsync.journal where table_name = 'public.encounters'")


def test_this_pcs_database_down_is_offline_and_the_application_goes_to_the_cloud(pc):
    down = "host=127.0.0.1 port=1 dbname=x user=u connect_timeout=1"
    doc = status.current(pc.settings(local=down), probe_timeout=1)
    assert (doc["state"], doc["reason"], doc["use"], doc["node"]) == ("offline", "local_down", "cloud", None)
    assert service.database_for_app(pc.settings(local=down)) == pc.app_cloud
    from_cli = json.loads(CliRunner().invoke(cli.main, ["status", "--json", "--local", down, "--cloud", pc.cloud]).stdout)
    assert (from_cli["state"], from_cli["reason"]) == ("offline", "local_down")
    app = create_app({"SETTINGS": pc.settings(local=down), "SECRET_KEY": SECRET, "TESTING": True})
    response = app.test_client().get("/api/status", headers={"Authorization": f"Bearer {pc.token}"})
    assert response.status_code == 503
    assert (response.get_json()["state"], response.get_json()["reason"]) == ("offline", "local_down")


# -- progress that moves -------------------------------------------------------------------------------------
class Recorder(Progress):
    def __init__(self):
        self.seen = []

    def show(self):
        self.seen.append((self.shown(), self.total))


def test_a_single_large_transaction_reports_progress_while_it_is_pushed(make_practice):
    p = make_practice()
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) select g, repeat('x', 200) from generate_series(1, 20000) g")
    p.sql(p.nodes["pc-1"], "update patients set phone = 'p' || id")
    recorder = Recorder()
    sync.push(p.settings("pc-1"), progress=recorder)
    inside = {done for done, total in recorder.seen if 0 < done < total}
    assert len(inside) >= 3, recorder.seen  # not "push 0/40000" until the end
    assert recorder.seen[-1][0] == recorder.seen[-1][1] == 40000
    assert all(a[0] <= b[0] for a, b in zip(recorder.seen, recorder.seen[1:]))


def test_the_application_is_sent_to_its_own_role_never_this_pcs(pc):
    """database_for_app() hands out the application's DSN on each side ([app] cloud / local): the role that
    writes tracked tables without any privilege on ccsync, never the PC's role (which may push as the PC)."""
    s = pc.settings()
    gone = pc.settings(cloud="host=127.0.0.1 port=1 dbname=x user=u connect_timeout=1")
    with psycopg.connect(pc.cloud, autocommit=True) as conn:
        pc_role = conn.execute("select current_user").fetchone()[0]
    for settings, side in ((s, "cloud"), (gone, "local")):
        dsn = service.database_for_app(settings)
        assert status.current(settings, probe_timeout=1)["use"] == side
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("select current_user").fetchone()[0] == APP not in (LOCAL, pc_role)
            conn.execute("update patients set name = name where false")  # it writes the tracked tables
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select count(*) from ccsync.journal")  # and nothing of ccsync
    # without [app]: one clear line, never this PC's own DSN in its place
    for app_local, app_cloud, missing in ((None, s.app_cloud, "local"), (s.app_local, None, "cloud")):
        partial = Settings(local=pc.local, cloud=pc.cloud, app_local=app_local, app_cloud=app_cloud)
        with pytest.raises(reconciler.CcsyncError, match=rf"add {missing} = .* under \[app\]"):
            service.database_for_app(partial)
