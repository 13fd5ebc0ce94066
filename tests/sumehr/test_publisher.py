"""The Sumehr publisher on real servers and the HUB simulator over real HTTP: offline, HUB errors, invalid
documents, the privacy flag, racing publishers, older versions, a publisher killed mid-publication."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import conninfo, sql

import cli
import reconciler
from reconciler.sumehr import hub, publisher as sumehr
from reconciler import status, sync
from reconciler.config import Settings
from reconciler.errors import CcsyncError
from reconciler.devtools.hubsim import SOAP_PATH, start_in_thread
from reconciler.sumehr.kmehr import build_sumehr
from tests.fix_pg import Databases
from tests.fix_sync import APP, LOCAL, OWNER, as_role, deployment_cloud, deployment_pc, pc_role

pytestmark = pytest.mark.one_version  # end to end: behaviour does not depend on the PostgreSQL version

SCHEMA = """
create table patients (
    id          int primary key,
    name        text not null,
    hub_consent boolean not null default false
);
create table sumehr_documents (
    patient_id int not null references patients (id),
    version    int not null,
    kmehr      text not null,
    created_at timestamptz not null default now(),
    primary key (patient_id, version)
);
"""
OFFLINE_CLOUD = "host=127.0.0.1 port=1 dbname=practice user=nobody connect_timeout=2"


def inss(pid: int) -> str:
    return f"850101{pid:05d}"


def document(pid: int, version: int) -> str:
    return build_sumehr(inss(pid), "Anne", f"Patient{pid}", "1985-01-01", "female", version).decode("utf-8")


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Clinic:
    """A cloud and its PCs with the demo's shape of patients and Sumehrs, publishing to one HUB simulator.

    The databases are copies of templates built once per server (CREATE DATABASE … TEMPLATE): installing
    and initializing a practice for every test would make this file slow.
    """

    def __init__(self, databases, templates: dict, hub_url: str, nodes=("pc-1",)):
        self.hub_url = hub_url
        cloud = _clone(databases, templates["cloud"], "cloud")
        self.cloud, self.cloud_owner = as_role(cloud, APP), as_role(cloud, OWNER)  # the application; ccsync's owner
        self.nodes = {name: as_role(_clone(databases, templates[name], name.replace("-", "_")), LOCAL)
                      for name in nodes}
        self.pc_cloud = {name: as_role(cloud, pc_role(name)) for name in nodes}  # each reconciler's cloud DSN

    def extra(self, **sumehr_options) -> dict:
        return {"hub": {"endpoint": self.hub_url + SOAP_PATH, "connect_timeout": 2, "read_timeout": 5},
                "sumehr": sumehr_options}

    def settings(self, node="pc-1", *, offline=False, **sumehr_options) -> Settings:
        return Settings(local=self.nodes[node], cloud=OFFLINE_CLOUD if offline else self.pc_cloud[node],
                        extra=self.extra(**sumehr_options))

    def sql(self, dsn, query, params=None):
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def patient(self, pid: int, consent=True, dsn=None):
        self.sql(dsn or self.cloud, "insert into patients (id, name, hub_consent) values (%s, %s, %s)",
                 (pid, f"Patient{pid}", consent))

    def consent(self, pid: int, on: bool):
        self.sql(self.cloud, "update patients set hub_consent = %s where id = %s", (on, pid))

    def sumehr(self, pid: int, version: int, kmehr: str | None = None, dsn=None):
        self.sql(dsn or self.cloud, "insert into sumehr_documents (patient_id, version, kmehr) values (%s, %s, %s)",
                 (pid, version, kmehr or document(pid, version)))

    def state(self, pid: int) -> dict | None:
        """The publication state of a patient on the cloud."""
        with psycopg.connect(self.cloud_owner, autocommit=True) as conn:
            cur = conn.execute("select * from ccsync.sumehr_state where patient = %s", (str(pid),))
            row = cur.fetchone()
            return dict(zip([c.name for c in cur.description], row)) if row else None

    def listed(self, node="pc-1", failed_only=False, **kw) -> list[dict]:
        sync.pull(self.settings(node))  # the state reaches the PC by replication
        return sumehr.list_patients(self.settings(node, **kw), failed_only=failed_only)


def _clone(databases, template: str, label: str) -> str:
    name = f"t_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(databases.server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template)))
    databases.names.append(name)
    return databases.server.dsn(name)


@pytest.fixture(scope="session")
def templates(pg):
    """A cloud with the schema tracked and two initialized PCs, once per server, as templates."""
    databases = Databases(pg)
    cloud = deployment_cloud(databases, SCHEMA, ["patients", "sumehr_documents"], label="tpl_sumehr_cloud")
    names = {"cloud": conninfo.conninfo_to_dict(cloud.owner)["dbname"]}
    for node in ("pc-1", "pc-2"):
        pc = deployment_pc(databases, cloud, node, label=f"tpl_sumehr_{node.replace('-', '_')}")
        names[node] = conninfo.conninfo_to_dict(pc.local)["dbname"]
    yield names
    databases.drop_all()


@pytest.fixture
def sim():
    url, state, stop = start_in_thread(port=0)
    yield url, state
    stop()


@pytest.fixture
def clinic(databases, templates, sim):
    return Clinic(databases, templates, sim[0])


@pytest.fixture
def hubsim(sim):
    return sim[1]


# -- offline, then online --------------------------------------------------------------------------------
def test_sumehrs_written_offline_are_listed_offline_then_only_the_latest_is_published(clinic, hubsim, caplog):
    clinic.patient(1)
    sync.pull(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"]))
    node = clinic.nodes["pc-1"]
    for version in (1, 2, 3):  # the PC works offline: three versions, on its own replica
        clinic.sumehr(1, version, dsn=node)

    offline = clinic.settings(offline=True)
    result = sumehr.publish(offline)
    assert (result["mode"], result["published"], result["not_up_to_date"]) == ("offline", 0, 1)
    assert hubsim.requests == 0
    [row] = sumehr.list_patients(offline, failed_only=True)
    assert (row["patient"], row["latest_version"], row["hub_version"], row["state"], row["reason"]) == \
        ("1", 3, None, "pending", "offline")
    assert row["since"] is not None
    assert status.current(offline)["hub_failures"] == 1
    with pytest.raises(CcsyncError, match="the cloud is unreachable: nothing can be retried offline"):
        sumehr.retry(offline)

    sync.push(clinic.settings())  # back online: the PC's Sumehrs reach the cloud
    with caplog.at_level(logging.INFO, logger="ccsync"):
        result = sumehr.publish(clinic.settings())
    assert (result["mode"], result["published"], result["not_up_to_date"]) == ("online", 1, 0)
    assert hubsim.requests == 1  # one publication for three versions
    assert hubsim.stored(inss(1)).version == 3
    assert inss(1) not in caplog.text and "Patient1" not in caplog.text  # no patient data above DEBUG
    [row] = clinic.listed()
    assert (row["state"], row["hub_version"], row["reason"], row["attempts"]) == ("up_to_date", 3, None, 0)
    assert row["hub_transaction_id"] == hubsim.stored(inss(1)).transaction_id
    assert clinic.listed(failed_only=True) == []
    assert sumehr.publish(clinic.settings())["published"] == 0  # nothing more to do
    assert hubsim.requests == 1


# -- HUB errors --------------------------------------------------------------------------------------------
def test_hub_error_is_listed_with_its_text_retried_after_backoff_and_published_after_retry(clinic, hubsim):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    hubsim.failing("service closed for maintenance", patient=inss(1))
    assert sumehr.publish(clinic.settings())["failed"] == 1
    [row] = clinic.listed(failed_only=True)
    assert (row["state"], row["reason"], row["attempts"]) == ("failed", "service closed for maintenance", 1)
    next_attempt = datetime.fromisoformat(row["next_attempt"])
    assert timedelta(seconds=25) < next_attempt - datetime.fromisoformat(row["last_attempt"]) <= timedelta(seconds=31)

    again = sumehr.publish(clinic.settings())  # before next_attempt: not retried
    assert (again["failed"], again["waiting"], hubsim.requests) == (0, 1, 1)

    later = datetime.now(timezone.utc) + timedelta(seconds=31)  # past the backoff: retried, backoff doubles
    assert sumehr.publish(clinic.settings(), now=later)["failed"] == 1
    assert hubsim.requests == 2
    state = clinic.state(1)
    assert state["attempts"] == 2
    assert timedelta(seconds=59) < state["next_attempt"] - later <= timedelta(seconds=61)

    hubsim.ok(inss(1))
    assert sumehr.retry(clinic.settings(), "1") == 1
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert hubsim.stored(inss(1)).version == 1
    [row] = clinic.listed()
    assert (row["state"], row["reason"], row["attempts"], row["next_attempt"]) == ("up_to_date", None, 0, None)


def test_backoff_doubles_from_30_seconds_up_to_an_hour():
    cfg = sumehr.sumehr_config(Settings())
    assert [cfg.backoff(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert cfg.backoff(20) == 3600


def test_a_hub_that_is_down_fails_every_due_patient_once_without_stopping_the_pass(clinic, hubsim):
    for pid in (1, 2):
        clinic.patient(pid)
        clinic.sumehr(pid, 1)
    hubsim.down()
    result = sumehr.publish(clinic.settings())
    assert (result["failed"], result["published"]) == (2, 0)
    assert clinic.state(1)["reason"] == "HUB answered HTTP 503"


# -- invalid documents -------------------------------------------------------------------------------------
def test_invalid_sumehr_is_listed_with_what_is_wrong_and_never_sent(clinic, hubsim):
    clinic.patient(1)
    clinic.sumehr(1, 1, document(1, 1).replace("<isvalidated>true</isvalidated>", "<isvalidated>false</isvalidated>"))
    assert sumehr.publish(clinic.settings())["invalid"] == 1
    assert hubsim.requests == 0
    [row] = clinic.listed(failed_only=True)
    assert (row["state"], row["reason"], row["next_attempt"]) == \
        ("failed", "invalid Sumehr: isvalidated is not true", None)
    [row] = clinic.listed(failed_only=True, offline=True)  # offline would not help it: the reason stays
    assert row["reason"] == "invalid Sumehr: isvalidated is not true"

    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert sumehr.publish(clinic.settings(), now=later)["waiting"] == 1  # not validated again and again
    assert clinic.state(1)["attempts"] == 1

    clinic.sumehr(1, 2, "<kmehrmessage>not closed")
    assert sumehr.publish(clinic.settings())["invalid"] == 1
    assert clinic.state(1)["reason"].startswith("invalid Sumehr: not well-formed XML")
    clinic.sumehr(1, 3)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert (hubsim.requests, hubsim.stored(inss(1)).version) == (1, 3)


# -- the privacy flag --------------------------------------------------------------------------------------
def test_flag_off_sends_nothing_and_leaves_the_list_flag_on_publishes_the_latest(clinic, hubsim):
    clinic.patient(1, consent=False)
    clinic.sumehr(1, 1)
    clinic.sumehr(1, 2)
    assert sumehr.publish(clinic.settings())["patients"] == 0
    assert hubsim.requests == 0 and clinic.listed() == []

    clinic.consent(1, True)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert (hubsim.requests, hubsim.stored(inss(1)).version) == (1, 2)

    clinic.consent(1, False)
    clinic.sumehr(1, 3)
    assert sumehr.publish(clinic.settings())["published"] == 0
    assert hubsim.requests == 1
    assert clinic.listed() == []
    assert status.current(clinic.settings())["hub_failures"] == 0

    clinic.consent(1, True)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert (hubsim.requests, hubsim.stored(inss(1)).version) == (2, 3)


# -- several publishers ------------------------------------------------------------------------------------
def test_two_publishers_racing_publish_each_version_exactly_once(databases, templates, sim):
    url, hubsim = sim
    clinic = Clinic(databases, templates, url, nodes=("pc-1", "pc-2"))
    patients = range(1, 9)
    for pid in patients:
        clinic.patient(pid)
        clinic.sumehr(pid, 1)
    hubsim.slow(0.1)

    def race() -> list[dict]:
        start, results, errors = threading.Barrier(2), [], []

        def publisher(node):
            start.wait()
            try:
                results.append(sumehr.publish(clinic.settings(node)))
            except Exception as exc:  # noqa: BLE001 — reported below
                errors.append(exc)

        threads = [threading.Thread(target=publisher, args=(node,)) for node in ("pc-1", "pc-2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        return results

    first = race()
    assert sum(r["published"] for r in first) == 8
    assert hubsim.requests == 8
    for pid in patients:
        clinic.sumehr(pid, 2)
    second = race()
    assert sum(r["published"] for r in second) == 8
    assert hubsim.requests == 16
    assert {p: v["version"] for p, v in hubsim.snapshot()["patients"].items()} == {inss(p): 2 for p in patients}
    unclaimed = clinic.sql(clinic.cloud_owner, "select count(*) from ccsync.sumehr_state where claimed_by is null")
    assert unclaimed == [(8,)]


def test_an_older_version_never_replaces_a_newer_one_on_the_hub(clinic, hubsim):
    clinic.patient(1)
    for version in (1, 2, 3):
        clinic.sumehr(1, version)
    sumehr.publish(clinic.settings())
    assert hubsim.stored(inss(1)).version == 3
    clinic.sql(clinic.cloud, "delete from sumehr_documents where patient_id = 1 and version = 3")
    result = sumehr.publish(clinic.settings())
    assert (result["published"], result["not_up_to_date"], hubsim.requests) == (0, 0, 1)
    assert hubsim.stored(inss(1)).version == 3

    # a HUB that already holds a newer version (put there by other software) refuses the older one
    clinic.patient(2)
    clinic.sumehr(2, 2)
    config = hub.HubConfig(clinic.hub_url + SOAP_PATH)
    assert hub.put_transaction(config, document(2, 5), request_id="1.1", author_nihii="12345678901",
                               author_name="Dr Demo").ok
    assert sumehr.publish(clinic.settings())["failed"] == 1
    assert hubsim.stored(inss(2)).version == 5
    assert clinic.state(2)["reason"] == "a newer Sumehr (version 5) is already on the HUB"


def test_the_version_is_stamped_into_a_document_that_lacks_it(clinic, hubsim):
    clinic.patient(1)
    bare = "\n".join(line for line in document(1, 4).splitlines() if "ccsync-version" not in line)
    clinic.sumehr(1, 4, bare)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert hubsim.stored(inss(1)).version == 4


# -- a publisher killed mid-publication ----------------------------------------------------------------------
def test_publisher_killed_mid_publication_publishes_exactly_once_after_restart(clinic, hubsim, tmp_path):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    config = tmp_path / "ccsync.toml"
    config.write_text(f'[hub]\nendpoint = "{clinic.hub_url}{SOAP_PATH}"\nread_timeout = 10\n'
                      "[sumehr]\nclaim_seconds = 5\n")
    env = {**os.environ, "CCSYNC_LOCAL_DSN": clinic.nodes["pc-1"], "CCSYNC_CLOUD_DSN": clinic.pc_cloud["pc-1"],
           "CCSYNC_CONFIG": str(config)}
    hubsim.slow(1, patient=inss(1))
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "sumehr", "publish"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: hubsim.requests == 1, 30, "the request on the HUB")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert clinic.state(1)["claimed_by"] == "pc-1"  # the dead publisher's claim is still there
    wait_for(lambda: hubsim.stored(inss(1)) is not None, 10, "the HUB to finish the request it received")
    hubsim.ok(inss(1))

    settings = Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"],
                        extra=clinic.extra(claim_seconds=5))
    assert sumehr.publish(settings)["busy"] == 1  # not sent twice while the claim holds
    assert hubsim.requests == 1
    wait_for(lambda: sumehr.publish(settings)["published"] == 1, 10, "the claim to expire")
    assert hubsim.snapshot()["patients"] == {inss(1): {"version": 1, "transaction_id": "HUBSIM.000001"}}
    state = clinic.state(1)
    assert (state["state"], state["hub_version"], state["hub_transaction_id"]) == ("up_to_date", 1, "HUBSIM.000001")
    assert (state["claimed_by"], state["claimed_until"]) == (None, None)


def test_the_service_publishes_by_itself(clinic, hubsim, tmp_path):
    config = tmp_path / "ccsync.toml"
    config.write_text(f'[hub]\nendpoint = "{clinic.hub_url}{SOAP_PATH}"\n[sumehr]\ninterval_seconds = 0.5\n')
    env = {**os.environ, "CCSYNC_LOCAL_DSN": clinic.nodes["pc-1"], "CCSYNC_CLOUD_DSN": clinic.pc_cloud["pc-1"],
           "CCSYNC_CONFIG": str(config)}
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        clinic.patient(1)
        clinic.sumehr(1, 1)
        wait_for(lambda: hubsim.stored(inss(1)) is not None, 30, "the Sumehr on the HUB")
        clinic.sumehr(1, 2, dsn=None)
        wait_for(lambda: hubsim.stored(inss(1)).version == 2, 30, "the new version on the HUB")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and inss(1) not in err


# -- status, CLI, configuration --------------------------------------------------------------------------
def test_status_hub_failures_counts_the_patients_listed_as_not_up_to_date(clinic, hubsim):
    for pid in (1, 2, 3):
        clinic.patient(pid)
        clinic.sumehr(pid, 1)
    hubsim.failing("no", patient=inss(2))
    sumehr.publish(clinic.settings())
    sync.pull(clinic.settings())
    clinic.sumehr(3, 2, dsn=clinic.nodes["pc-1"])  # written on the PC, not yet pushed
    failed = sumehr.list_patients(clinic.settings(), failed_only=True)
    assert [(r["patient"], r["state"]) for r in failed] == [("2", "failed"), ("3", "pending")]
    assert len(sumehr.list_patients(clinic.settings())) == 3
    assert status.current(clinic.settings())["hub_failures"] == 2


def test_sumehr_cli_json_keys_and_one_line_errors(clinic, tmp_path):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    sides = ["--local", clinic.nodes["pc-1"], "--cloud", clinic.pc_cloud["pc-1"]]
    config = tmp_path / "ccsync.toml"
    config.write_text('[hub]\nendpoint = "http://127.0.0.1:1/hubservices/v3"\n')  # nothing listens there
    env = {"CCSYNC_CONFIG": str(config)}
    runner = CliRunner()
    published = runner.invoke(cli.main, ["sumehr", "publish", "--json", *sides], env=env)
    assert published.exit_code == 0, published.output
    assert set(json.loads(published.output)) == {"mode", "node", "patients", "published", "failed", "invalid",
                                                 "busy", "waiting", "not_up_to_date", "seconds"}
    sync.pull(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"]))
    listed = runner.invoke(cli.main, ["sumehr", "list", "--json", "--failed", *sides], env=env)
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert set(row) == set(sumehr.LIST_KEYS)
    assert row["state"] == "failed" and row["reason"].startswith("HUB unreachable")
    text = runner.invoke(cli.main, ["sumehr", "list", *sides], env=env)
    assert text.exit_code == 0 and "HUB unreachable" in text.output
    retried = runner.invoke(cli.main, ["sumehr", "retry", *sides], env=env)
    assert retried.exit_code == 0 and "1 patient(s)" in retried.output
    unknown = runner.invoke(cli.main, ["sumehr", "retry", "999", *sides], env=env)
    assert unknown.exit_code == 1
    assert "unknown patient '999'" in unknown.output and len(unknown.output.strip().splitlines()) == 1


def test_bad_configuration_is_one_clear_line(clinic):
    for options, message in [
        ({"documents_table": "public.nope"}, "table 'public.nope' does not exist in the cloud database"),
        ({"kmehr_column": "xml"}, "column 'xml' does not exist in public.sumehr_documents in the cloud database"),
        ({"flag_column": "name"}, "public.patients.name is text, not boolean"),
        ({"documents_table": "a.b.c.d"}, "is not a table name"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"retry_base_seconds": "soon"}, "retry_base_seconds must be a positive number of seconds"),
    ]:
        with pytest.raises(CcsyncError, match=message) as info:
            sumehr.publish(clinic.settings(**options))
        assert "\n" not in str(info.value)
    with pytest.raises(CcsyncError, match="is not an http"):
        sumehr.publish(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"], extra={"hub": {"endpoint": "x"}}))


def test_hub_sim_command_serves_until_interrupted():
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "hub-sim", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("HUB simulator: SOAP on http://127.0.0.1:")
        url = line.split()[4].rstrip(",")
        import requests

        assert requests.get(url.replace(SOAP_PATH, "/control/state"), timeout=5).json()["requests"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
