"""The Sumehr publisher on real servers and the HUB simulator over real HTTP: offline, HUB errors, invalid
documents, the privacy flag, racing publishers, older versions, a publisher killed mid-publication."""

from __future__ import annotations

import json
import re
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
from reconciler.errors import CcsyncError, Unreachable
from reconciler.devtools.hubsim import SOAP_PATH, start_in_thread
from reconciler.sumehr.kmehr import build_sumehr
from tests.fix_pg import Databases
from tests.fix_sync import APP, LOCAL, OWNER, as_role, deployment_cloud, deployment_pc, on_node, pc_role, wait_for

pytestmark = pytest.mark.one_version  # end to end: behaviour does not depend on the PostgreSQL version

SCHEMA = """
create table patients (
    id          int primary key,
    name        text not null,
    inss        text,
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


def _hub_toml(tmp_path, clinic) -> str:
    """A ccsync.toml naming the clinic's HUB, for the CLI."""
    config = tmp_path / "ccsync.toml"
    config.write_text(f'[hub]\nendpoint = "{clinic.hub_url + SOAP_PATH}"\n')
    return config


def with_node(settings: Settings, fn, *args, **kwargs):
    """A publisher function that takes this PC's database, called as the CLI calls it (its connection opened for
    the call)."""
    return on_node(settings.need_local(), fn, settings, *args, **kwargs)


def inss(pid: int) -> str:
    return f"850101{pid:05d}"


def document(pid: int, version: int) -> str:
    return build_sumehr(inss(pid), "Anne", f"Patient{pid}", "1985-01-01", "female", version).decode("utf-8")


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
        # each reconciler's cloud DSN (both template PCs are registered on the cloud, cloned or not)
        self.pc_cloud = {name: as_role(cloud, pc_role(name)) for name in ("pc-1", "pc-2")}

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
        self.sql(dsn or self.cloud, "insert into patients (id, name, inss, hub_consent) values (%s, %s, %s, %s)",
                 (pid, f"Patient{pid}", inss(pid), consent))

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

    def listed(self, node="pc-1", failed_only=False, offline=False, **options) -> list[dict]:
        sync.pull(self.settings(node))  # the state reaches the PC by replication
        return with_node(self.settings(node, offline=offline), sumehr.list_patients, failed_only=failed_only, **options)


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
def test_sumehrs_written_offline_are_listed_offline_then_only_the_latest_is_published(clinic, hubsim, caplog, tmp_path):
    clinic.patient(1)
    sync.pull(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"]))
    node = clinic.nodes["pc-1"]
    for version in (1, 2, 3):  # the PC works offline: three versions, on its own replica
        clinic.sumehr(1, version, dsn=node)

    offline = clinic.settings(offline=True)
    result = sumehr.publish(offline)
    assert (result["mode"], result["published"], result["not_up_to_date"]) == ("offline", 0, 1)
    assert hubsim.requests == 0
    [row] = with_node(offline, sumehr.list_patients, failed_only=True)
    assert (row["patient"], row["latest_version"], row["hub_version"], row["state"], row["reason"]) == \
        ("1", 3, None, "waiting", sumehr.OFFLINE_REASON)
    assert (row["since"] is not None, row["attempts"], row["last_attempt"]) == (True, 0, None)
    doc = status.current(offline)
    assert (doc["hub_failures"], doc["hub_waiting"]) == (0, 1)  # waiting is not a failure someone must look at
    with pytest.raises(Unreachable) as unreachable:  # typed, for each door to word (tests/web/test_cloud_down.py)
        with_node(offline, sumehr.retry)
    assert unreachable.value.where == "cloud"
    told = CliRunner().invoke(cli.main, ["sumehr", "retry", "--local", node, "--cloud", OFFLINE_CLOUD],
                              env={"CCSYNC_CONFIG": str(_hub_toml(tmp_path, clinic))})
    assert told.exit_code == 1 and "the cloud is unreachable: nothing can be retried offline" in told.output

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
    assert (row["state"], row["reason"], row["attempts"]) == ("failing", "HUB did not accept the Sumehr: service closed for maintenance", 1)
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
    assert with_node(clinic.settings(), sumehr.retry, "1") == 1
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
        ("invalid", "the Sumehr is not marked validated (isvalidated is not true)", None)
    [row] = clinic.listed(failed_only=True, offline=True)  # offline would not help it: the reason stays
    assert (row["state"], row["reason"]) == ("invalid", "the Sumehr is not marked validated (isvalidated is not true)")

    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert sumehr.publish(clinic.settings(), now=later)["waiting"] == 1  # not validated again and again
    assert clinic.state(1)["attempts"] == 1

    clinic.sumehr(1, 2, "<kmehrmessage>not closed")
    assert sumehr.publish(clinic.settings())["invalid"] == 1
    assert clinic.state(1)["reason"] == "the document is not readable XML (damaged or cut off at line 1)"
    clinic.sumehr(1, 3)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert (hubsim.requests, hubsim.stored(inss(1)).version) == (1, 3)


# -- the privacy flag --------------------------------------------------------------------------------------
def test_flag_off_sends_nothing_and_leaves_the_list_flag_on_publishes_the_latest(clinic, hubsim):
    clinic.patient(1, consent=False)
    clinic.sumehr(1, 1)
    clinic.sumehr(1, 2)
    assert sumehr.publish(clinic.settings())["patients"] == 0
    assert hubsim.requests == 0 and clinic.listed(failed_only=True) == []
    assert [(r["patient"], r["state"]) for r in clinic.listed()] == [("1", "no_consent")]

    clinic.consent(1, True)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert (hubsim.requests, hubsim.stored(inss(1)).version) == (1, 2)

    clinic.consent(1, False)
    clinic.sumehr(1, 3)
    assert sumehr.publish(clinic.settings())["published"] == 0
    assert hubsim.requests == 1
    assert [r["state"] for r in clinic.listed()] == ["no_consent"]
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
    assert clinic.sql(clinic.cloud_owner, "select count(*) from ccsync.sumehr_claims") == [(0,)]


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
    assert clinic.state(2)["reason"] == "HUB did not accept the Sumehr: a newer Sumehr (version 5) is already on the HUB"


def test_the_version_is_stamped_into_a_document_that_lacks_it(clinic, hubsim):
    clinic.patient(1)
    bare = "\n".join(line for line in document(1, 4).splitlines() if "ccsync-version" not in line)
    clinic.sumehr(1, 4, bare)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert hubsim.stored(inss(1)).version == 4


# -- a publisher killed mid-publication ----------------------------------------------------------------------
def test_a_killed_publishers_patient_is_published_again_at_once_and_only_once(clinic, hubsim, tmp_path):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    config = tmp_path / "ccsync.toml"
    config.write_text(f'[hub]\nendpoint = "{clinic.hub_url}{SOAP_PATH}"\nread_timeout = 10\n')
    env = {**os.environ, "CCSYNC_LOCAL_DSN": clinic.nodes["pc-1"], "CCSYNC_CLOUD_DSN": clinic.pc_cloud["pc-1"],
           "CCSYNC_CONFIG": str(config)}
    hubsim.slow(1, patient=inss(1))
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "sumehr", "publish"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: hubsim.requests == 1, 30, "the request on the HUB")
        assert clinic.sql(clinic.cloud_owner, "select node from ccsync.sumehr_claims") == [("pc-1",)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    wait_for(lambda: hubsim.stored(inss(1)) is not None, 10, "the HUB to finish the request it received")
    hubsim.ok(inss(1))

    # The claim (good for 40 s) died with the publisher's connection: the next pass, a PC's or this one's
    # after a restart, publishes at once, and the HUB keeps one copy.
    started = time.monotonic()
    wait_for(lambda: sumehr.publish(clinic.settings())["published"] == 1, 5, "the patient to be published again")
    assert time.monotonic() - started < 5
    assert hubsim.snapshot()["patients"] == {inss(1): {"version": 1, "transaction_id": "HUBSIM.000001"}}
    state = clinic.state(1)
    assert (state["state"], state["hub_version"], state["hub_transaction_id"]) == ("up_to_date", 1, "HUBSIM.000001")
    assert clinic.sql(clinic.cloud_owner, "select count(*) from ccsync.sumehr_claims") == [(0,)]


def test_a_live_claim_is_not_taken_over(clinic, hubsim):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    with psycopg.connect(clinic.pc_cloud["pc-2"], autocommit=True) as holder:  # pc-2's publisher, mid-call
        holder.execute("select ccsync.sumehr_refresh(array['1'], array[1::bigint], array[now()])")
        [(claim,)] = holder.execute("select claim from ccsync.sumehr_claim('1', 60)").fetchall()
        assert claim is not None
        result = sumehr.publish(clinic.settings())
        assert (result["busy"], result["published"], hubsim.requests) == (1, 0, 0)
    assert sumehr.publish(clinic.settings())["published"] == 1  # its session ended: the claim with it


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
    failed = with_node(clinic.settings(), sumehr.list_patients, failed_only=True)
    assert [(r["patient"], r["state"]) for r in failed] == [("2", "failing"), ("3", "waiting")]
    assert len(with_node(clinic.settings(), sumehr.list_patients)) == 3
    doc = status.current(clinic.settings())
    assert (doc["hub_failures"], doc["hub_waiting"], doc["hub_configured"]) == (1, 1, True)


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
    assert row["state"] == "failing" and row["reason"].startswith("HUB unreachable")
    text = runner.invoke(cli.main, ["sumehr", "list", *sides], env=env)
    assert text.exit_code == 0 and "HUB unreachable" in text.output
    retried = runner.invoke(cli.main, ["sumehr", "retry", *sides], env=env)
    assert retried.exit_code == 0 and "1 patient(s)" in retried.output
    unknown = runner.invoke(cli.main, ["sumehr", "retry", "999", *sides], env=env)
    assert unknown.exit_code == 1
    assert "unknown patient '999'" in unknown.output and len(unknown.output.strip().splitlines()) == 1


def test_names_and_hub_reasons_cannot_drive_the_terminal_of_whoever_lists_them(clinic, hubsim, tmp_path):
    clinic.patient(1)
    clinic.sql(clinic.cloud, "update patients set name = %s where id = 1", ("Anne\x1b]0;owned\x07\x1b[8m",))
    clinic.sumehr(1, 1)
    # XML carries no C0 control, but C1's CSI (U+009B) and bidi overrides pass
    hubsim.failing("refused\x9b2J\x9b1;1H all is \u202ewell", patient=inss(1))
    assert sumehr.publish(clinic.settings())["failed"] == 1
    assert clinic.state(1)["reason"] == "HUB did not accept the Sumehr: refused 2J 1;1H all is well"  # stored without control characters
    sync.pull(clinic.settings())
    config = tmp_path / "ccsync.toml"
    config.write_text(f'[hub]\nendpoint = "{clinic.hub_url}{SOAP_PATH}"\n')
    listed = CliRunner().invoke(cli.main, ["sumehr", "list", "--local", clinic.nodes["pc-1"], "--cloud",
                                           clinic.pc_cloud["pc-1"]], env={"CCSYNC_CONFIG": str(config)}, color=True)
    assert listed.exit_code == 0, listed.output
    assert "Anne" in listed.output and "all is well" in listed.output
    assert not any(ch in listed.output for ch in "\x1b\x07\x9b\u202e"), repr(listed.output)


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


# -- only the patient's own document reaches the HUB ----------------------------------------------------------
def with_second_folder(pid: int, other: int) -> str:
    """The patient's Sumehr with a second folder about another patient appended."""
    own, theirs = document(pid, 1), document(other, 1)
    second = theirs[theirs.index("<folder>"):theirs.index("</folder>") + len("</folder>")]
    return own.replace("</folder>", "</folder>" + second, 1)


def with_hidden_id(pid: int, other: int) -> str:
    """The patient's Sumehr with the other patient's INSS in a first patient id that starts with a comment: a
    reader of the first text node sees an empty id, a HUB reads the other patient's INSS."""
    own = document(pid, 1)
    return own.replace('<id S="ID-PATIENT"', f'<id S="ID-PATIENT" SV="1.0"><!-- -->{inss(other)}</id><id S="ID-PATIENT"', 1)


@pytest.mark.parametrize(("kmehr", "reason"), [
    (lambda: document(21, 1), "the document is for another patient (its INSS is not the one in this patient's record)"),
    (lambda: with_hidden_id(20, 21), "the document's patient has an INSS with markup inside it"),
    (lambda: with_second_folder(20, 21), "the document has 2 folders: a Sumehr is about one patient, in one folder"),
    (lambda: with_second_folder(21, 20), "the document has 2 folders: a Sumehr is about one patient, in one folder"),
])
def test_a_document_about_anyone_else_is_recorded_invalid_and_never_sent(clinic, hubsim, kmehr, reason):
    clinic.patient(20)
    clinic.patient(21, consent=False)  # the other patient did not consent: nothing of theirs may leave
    clinic.sumehr(20, 1, kmehr())
    result = sumehr.publish(clinic.settings())
    assert (result["invalid"], result["published"], result["not_up_to_date"]) == (1, 0, 1)
    assert hubsim.requests == 0 and hubsim.snapshot()["patients"] == {}
    state = clinic.state(20)
    assert (state["state"], state["reason"], state["hub_version"]) == ("invalid", reason, None)
    [row] = clinic.listed(show="attention")
    assert (row["patient"], row["state"], row["reason"]) == ("20", "invalid", reason)
    assert status.current(clinic.settings())["hub_failures"] == 1
    clinic.sumehr(20, 2)  # the practice fixes it: the right document goes out
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert list(hubsim.snapshot()["patients"]) == [inss(20)]


def test_a_patient_record_without_inss_publishes_nothing(clinic, hubsim):
    clinic.patient(1)
    clinic.sql(clinic.cloud, "update patients set inss = null where id = 1")
    clinic.sumehr(1, 1)
    assert sumehr.publish(clinic.settings())["invalid"] == 1
    assert hubsim.requests == 0
    assert clinic.state(1)["reason"].startswith("this patient's record has no valid INSS")


def test_the_inss_column_is_configured_and_checked(clinic):
    with pytest.raises(CcsyncError, match=r"column 'nis' does not exist in public.patients in the cloud database "
                                          r"\(the patient's INSS.*set \[sumehr\] inss_column"):
        sumehr.publish(clinic.settings(inss_column="nis"))


def test_an_inss_that_two_patient_records_share_publishes_neither(clinic, hubsim):
    clinic.patient(20)
    clinic.patient(21, consent=False)
    # 20's record carries 21's INSS (in another notation): 21's document would pass as 20's own
    clinic.sql(clinic.cloud, "update patients set inss = %s where id = 20", ("85.01.01-000.21",))
    clinic.sumehr(20, 1, document(21, 1))
    result = sumehr.publish(clinic.settings())
    assert (result["invalid"], result["published"]) == (1, 0)
    assert hubsim.requests == 0
    assert clinic.state(20)["reason"] == ("the INSS in this patient's record is in another patient's record too: "
                                          "correct or merge the records")
    clinic.sql(clinic.cloud, "update patients set inss = %s where id = 20", (inss(20),))
    clinic.sumehr(20, 2)
    assert sumehr.publish(clinic.settings())["published"] == 1
    assert list(hubsim.snapshot()["patients"]) == [inss(20)]


def cloud_view(clinic, pg, name: str, query: str) -> str:
    """A view on the cloud that the PCs' publishers read (the application's tables in another shape)."""
    superuser = pg.dsn(conninfo.conninfo_to_dict(clinic.cloud_owner)["dbname"])
    clinic.sql(superuser, f"create view {name} as {query}")
    for node in ("pc-1", "pc-2"):
        clinic.sql(superuser, f"grant select on {name} to {pc_role(node)}")
    return f"public.{name}"


def test_an_inss_kept_as_a_number_keeps_its_leading_zero(clinic, hubsim, pg):
    # born in 2003: the INSS starts with 0, which a bigint column drops
    patients = cloud_view(clinic, pg, "patients_numeric", "select id, name, inss::bigint as inss, hub_consent from patients")
    clinic.patient(1)
    clinic.sql(clinic.cloud, "update patients set inss = '03040500123' where id = 1")
    clinic.sumehr(1, 1, build_sumehr("03040500123", "Lou", "Patient1", "2003-04-05", "x", 1).decode())
    result = sumehr.publish(clinic.settings(patients_table=patients))
    assert (result["published"], result["invalid"]) == (1, 0), clinic.state(1)
    assert hubsim.stored("03040500123").version == 1


def test_an_author_nihii_that_is_no_nihii_never_names_a_request(clinic, hubsim, caplog):
    clinic.patient(1)
    odd = build_sumehr(inss(1), "Anne", "Patient1", "1985-01-01", "female", 1,
                       author_nihii=f"Anne Patient1 {inss(1)}").decode()  # the patient typed in the author's field
    clinic.sumehr(1, 1, odd)
    with caplog.at_level(logging.INFO, logger="ccsync"):
        assert sumehr.publish(clinic.settings())["failed"] == 1
    assert hubsim.requests == 0 and inss(1) not in caplog.text and "Patient1" not in caplog.text
    assert clinic.state(1)["reason"] == ("no author NIHII (11 digits) in the Sumehr: set [hub] author_nihii in "
                                         "ccsync.toml")
    assert sumehr.publish(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"], extra={
        "hub": {**clinic.extra()["hub"], "author_nihii": "10987654321"}}), now=datetime.now() + timedelta(hours=2)
    )["published"] == 1


def test_a_version_column_that_is_no_number_is_a_configuration_error(clinic, hubsim, pg):
    # as text, "10" < "9" and one "draft" stops every pass: refused before anything is read
    documents = cloud_view(clinic, pg, "documents_text", "select patient_id, version::text as version, kmehr, "
                                                         "created_at from sumehr_documents")
    clinic.patient(1)
    clinic.sumehr(1, 1)
    with pytest.raises(CcsyncError, match=r"^Sumehr configuration: public.documents_text.version is text, not a "
                                          r"number: set \[sumehr\] version_column"):
        sumehr.publish(clinic.settings(documents_table=documents))
    assert hubsim.requests == 0


def test_a_document_without_content_is_invalid_and_the_pass_goes_on(clinic, hubsim):
    clinic.sql(clinic.cloud_owner, "alter table sumehr_documents alter column kmehr drop not null")
    clinic.patient(1)
    clinic.patient(2)
    clinic.sql(clinic.cloud, "insert into sumehr_documents (patient_id, version, kmehr) values (1, 1, null)")
    clinic.sumehr(2, 1)
    result = sumehr.publish(clinic.settings())
    assert (result["invalid"], result["published"]) == (1, 1)
    assert clinic.state(1)["reason"] == "the document is not readable XML (it is empty)"
    assert hubsim.stored(inss(2)).version == 1


def test_a_document_without_a_version_is_never_the_one_sent(clinic, hubsim, pg):
    documents = cloud_view(clinic, pg, "documents_draft", "select patient_id, nullif(version, 99) as version, kmehr, "
                                                      "created_at from sumehr_documents")
    clinic.patient(1)
    clinic.sumehr(1, 1)
    clinic.sumehr(1, 99, build_sumehr(inss(1), "Draft", "Patient1", "1985-01-01", "female", 99).decode())
    result = sumehr.publish(clinic.settings(documents_table=documents))
    assert (result["published"], result["failed"]) == (1, 0)
    assert sumehr.publish(clinic.settings(documents_table=documents))["published"] == 0
    assert hubsim.stored(inss(1)).version == 1 and hubsim.requests == 1


@pytest.mark.parametrize("column", ["text", "bytea"])
def test_a_document_larger_than_a_sumehr_can_be_is_invalid_and_not_read(clinic, hubsim, pg, column):
    documents = "public.sumehr_documents" if column == "text" else cloud_view(
        clinic, pg, "documents_bytes", "select patient_id, version, convert_to(kmehr, 'UTF8') as kmehr, created_at "
                                       "from sumehr_documents")
    clinic.patient(1)
    big = document(1, 1).replace("<text L=\"fr\">", "<text L=\"fr\">" + "é" * 60_000, 1)  # 120 kB in UTF-8
    clinic.sumehr(1, 1, big)
    result = sumehr.publish(clinic.settings(max_document_bytes=100_000, documents_table=documents))
    assert (result["invalid"], hubsim.requests) == (1, 0)
    assert clinic.state(1)["reason"] == ("the document is larger than a Sumehr may be (more than 100000 bytes: "
                                         "[sumehr] max_document_bytes)")
    larger = clinic.settings(max_document_bytes=1_000_000, documents_table=documents)  # a larger limit, a retry
    assert with_node(larger, sumehr.retry, "1") == 1
    assert sumehr.publish(larger)["published"] == 1
    with pytest.raises(CcsyncError, match=r"max_document_bytes must be a whole number of bytes"):
        sumehr.publish(clinic.settings(max_document_bytes="10MB"))


# -- nothing is published until a HUB is configured ------------------------------------------------------------
def test_without_a_hub_nothing_is_published_or_counted_and_status_says_so(clinic, hubsim, tmp_path):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    bare = Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"])
    (tmp_path / "ccsync.toml").write_text("# no [hub]: the practice never named a HUB\n")
    with pytest.raises(CcsyncError, match=r"^Sumehr publication not configured: set \[hub\] endpoint"):
        sumehr.publish(bare)
    with pytest.raises(CcsyncError, match="^Sumehr publication not configured"):
        with_node(bare, sumehr.list_patients)
    doc = status.current(bare)
    assert (doc["hub_configured"], doc["hub_failures"], doc["hub_waiting"]) == (False, None, None)
    text = CliRunner().invoke(cli.main, ["status", "--local", clinic.nodes["pc-1"], "--cloud", clinic.pc_cloud["pc-1"]],
                              env={"CCSYNC_CONFIG": str(tmp_path / "ccsync.toml")})
    assert "Sumehr publication not configured" in text.output

    class Service:  # what the publisher task sees of `ccsync run`: online, on this PC
        settings, name = bare, "pc-1"
        sides = type("Sides", (), {"cloud": psycopg.connect(clinic.pc_cloud["pc-1"], autocommit=True)})()

    task = sumehr.service_task(interval=0.01)
    try:
        for _ in range(3):
            task(Service)
            time.sleep(0.02)
    finally:
        Service.sides.cloud.close()
    assert task._thread is None and hubsim.requests == 0
    assert clinic.state(1) is None  # not even the state is written: the practice never asked for a HUB


@pytest.mark.parametrize(("hub_section", "message"), [
    ({"endpoint": "http://hub.example.be/hubservices/v3"}, "plain http:// would send patients' Sumehrs unencrypted"),
    ({"endpoint": "https://hub.example.be/hubservices/v3", "verify": False},
     "verify = false would accept any server as the HUB: set insecure = true"),
    ({"endpoint": "https://hub.example.be/hubservices/v3", "insecure": "yes"}, "insecure must be true or false"),
])
def test_unsafe_hub_settings_are_refused_with_one_line(clinic, hubsim, hub_section, message):
    settings = Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"], extra={"hub": hub_section})
    with pytest.raises(CcsyncError, match=re.escape(message)) as info:
        sumehr.publish(settings)
    assert "\n" not in str(info.value)


def test_an_insecure_hub_is_named_in_the_log_at_start(clinic, hubsim, caplog):
    extra = {"hub": {"endpoint": "https://127.0.0.1:1/hubservices/v3", "verify": False, "insecure": True,
                     "connect_timeout": 1}}
    sumehr._warned.clear()
    with caplog.at_level(logging.WARNING, logger="ccsync"):
        sumehr.publish(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"], extra=extra))
    assert "the HUB's certificate is NOT checked" in caplog.text


# -- the cloud functions: node from the connected role, bounded claims -------------------------------------------
def as_node(dsn: str, node: str) -> psycopg.Connection:
    """A session on the cloud that claims to be `node` (ccsync.origin): only a trusted session is believed."""
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("select set_config('ccsync.origin', %s, false)", (node,))
    return conn


def test_the_claim_function_refuses_an_unbounded_claim(clinic):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    with psycopg.connect(clinic.pc_cloud["pc-1"], autocommit=True) as conn:
        conn.execute("select ccsync.sumehr_refresh(array['1'], array[1::bigint], array[now()])")
        for seconds in ("infinity", "NaN", 601, 0, -5, None):
            with pytest.raises(psycopg.Error, match="a Sumehr claim lasts more than 0 and at most 600 seconds") as info:
                conn.execute("select * from ccsync.sumehr_claim('1', %s::float8)", (seconds,))
            assert info.value.sqlstate == "CC051"
        assert clinic.sql(clinic.cloud_owner, "select count(*) from ccsync.sumehr_claims") == [(0,)]
        [(claim,)] = conn.execute("select claim from ccsync.sumehr_claim('1', 600)").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # a PC reads no claim, writes none directly
            conn.execute("select * from ccsync.sumehr_claims")
        [(until,)] = clinic.sql(clinic.cloud_owner, "select claimed_until - claimed_at from ccsync.sumehr_claims "
                                                    "where claim = %s", (claim,))
        assert until == timedelta(seconds=600)


def test_only_the_claiming_node_records_or_releases_and_a_role_names_no_node(clinic, pg):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    # pc-2's own role, even naming pc-1, stays pc-2
    with psycopg.connect(clinic.pc_cloud["pc-1"], autocommit=True) as pc1, \
            as_node(clinic.pc_cloud["pc-2"], "pc-1") as pc2:
        pc1.execute("select ccsync.sumehr_refresh(array['1'], array[1::bigint], array[now()])")
        [(claim,)] = pc1.execute("select claim from ccsync.sumehr_claim('1', 60)").fetchall()
        before = clinic.state(1)
        assert pc2.execute("select ccsync.sumehr_record('1', %s, 1, 'published', null, 'FORGED')",
                           (claim,)).fetchone() == (False,)
        assert pc2.execute("select ccsync.sumehr_release('1', %s)", (claim,)).fetchone() == (False,)
        assert clinic.state(1) == before
        assert pc1.execute("select ccsync.sumehr_record('1', %s, 1, 'failed', %s)",
                           (claim, "x" * 10_000)).fetchone() == (True,)
        assert len(clinic.state(1)["reason"]) == 500  # whatever a PC sends, the stored reason is bounded

    # A role registered to no PC is refused, whatever node it names.
    role = f"pc_role_{uuid.uuid4().hex[:8]}"
    superuser = pg.dsn(conninfo.conninfo_to_dict(clinic.cloud_owner)["dbname"])
    clinic.sql(superuser, sql.SQL("create role {} login; grant usage on schema ccsync to {}").format(
        sql.Identifier(role), sql.Identifier(role)).as_string())
    for function in ("sumehr_claim(text, double precision, timestamptz)", "sumehr_retry(text)"):
        clinic.sql(superuser, f"grant execute on function ccsync.{function} to {role}")
    with as_node(superuser + f" user={role}", "pc-1") as forged:
        for call in ("select * from ccsync.sumehr_claim('1', 60)", "select ccsync.sumehr_retry()"):
            with pytest.raises(psycopg.Error, match=f"the role {role} is not registered to a node") as info:
                forged.execute(call)
            assert info.value.sqlstate == "CC010"


def test_a_hub_reason_that_quotes_the_patient_is_stored_without_them(clinic, hubsim):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    hubsim.failing("no therapeutic link for PATIENT1 Anne (°01/01/1985, NISS 850101-000-01)", patient=inss(1))
    assert sumehr.publish(clinic.settings())["failed"] == 1
    reason = "HUB did not accept the Sumehr: no therapeutic link for [patient] [patient] (°[patient], NISS [number])"
    assert clinic.state(1)["reason"] == reason
    [row] = clinic.listed(show="attention")
    assert row["reason"] == reason


def test_a_transaction_id_from_a_pc_is_bounded_like_a_reason(clinic):
    clinic.patient(1)
    clinic.sumehr(1, 1)
    with psycopg.connect(clinic.pc_cloud["pc-1"], autocommit=True) as pc1:
        pc1.execute("select ccsync.sumehr_refresh(array['1'], array[1::bigint], array[now()])")
        [(claim,)] = pc1.execute("select claim from ccsync.sumehr_claim('1', 60)").fetchall()
        assert pc1.execute("select ccsync.sumehr_record('1', %s, 1, 'published', null, %s)",
                           (claim, "T" * 1_000_000)).fetchone() == (True,)
    assert len(clinic.state(1)["hub_transaction_id"]) == 100  # replicated to every PC: never megabytes


def test_a_time_no_client_can_read_does_not_stop_publication_or_the_lists(clinic, hubsim):
    clinic.patient(1)
    clinic.patient(2)
    clinic.sumehr(1, 1)
    clinic.sumehr(2, 1)
    clinic.patient(3)
    clinic.sumehr(3, 1)
    clinic.sql(clinic.cloud_owner, "update sumehr_documents set created_at = 'infinity' where patient_id = 2")
    clinic.sql(clinic.cloud_owner, "update sumehr_documents set created_at = '20000-01-01' where patient_id = 3")
    with psycopg.connect(clinic.pc_cloud["pc-2"], autocommit=True) as pc2:  # another PC, as hostile as it can be
        pc2.execute("select ccsync.sumehr_refresh(array['1', '4'], array[1, 1]::bigint[], "
                    "array['-infinity', '0001-01-01 BC']::timestamptz[])")
        [(claim,)] = pc2.execute("select claim from ccsync.sumehr_claim('1', 60)").fetchall()
        pc2.execute("select ccsync.sumehr_record('1', %s, 1, 'failed', 'x', null, 30, 3600, '-infinity')", (claim,))
    assert clinic.state(1)["next_attempt"] > datetime.now(timezone.utc)  # what every client can read
    assert len(clinic.listed()) == 3  # every PC reads the replicated state
    assert with_node(clinic.settings(), sumehr.retry, "1") == 1
    result = sumehr.publish(clinic.settings())
    assert result["published"] == 3
    assert {r["patient"]: r["state"] for r in clinic.listed()} == {"1": "up_to_date", "2": "up_to_date",
                                                                   "3": "up_to_date"}


# -- the list a person uses: states, search, numeric sort, pages --------------------------------------------
def test_the_list_searches_by_name_and_inss_sorts_numerically_and_by_state_and_pages(clinic, hubsim):
    for pid in (2, 10, 100, 9):
        clinic.patient(pid)
        clinic.sumehr(pid, 1)
    clinic.patient(5, consent=False)
    clinic.sumehr(5, 1)
    clinic.sql(clinic.cloud, "update patients set name = 'Chloé Dubois' where id = 10")
    clinic.sumehr(100, 2, document(101, 2))  # not this patient's: invalid
    hubsim.failing("no therapeutic link", patient=inss(9))
    sumehr.publish(clinic.settings())
    clinic.sumehr(2, 2, dsn=None)  # a new version, not yet tried

    page = clinic.listed()
    assert [r["patient"] for r in page] == ["2", "5", "9", "10", "100"]  # 10 after 9, not after 1
    assert [(r["patient"], r["state"]) for r in with_node(clinic.settings(), sumehr.list_patients, sort="state")] == [
        ("100", "invalid"), ("9", "failing"), ("2", "waiting"), ("10", "up_to_date"), ("5", "no_consent")]
    assert clinic.listed(search="chloé")[0]["name"] == "Chloé Dubois"
    assert [r["patient"] for r in clinic.listed(search="dubois CHLOE".replace("CHLOE", "chloé"))] == ["10"]
    assert [r["patient"] for r in clinic.listed(search="85.01.01-00009")] == ["9"]  # INSS digits, any notation
    assert clinic.listed(search="nobody") == []

    settings = clinic.settings()
    first = with_node(settings, sumehr.listing, limit=2)
    second = with_node(settings, sumehr.listing, limit=2, offset=2)
    assert (first.total, [r["patient"] for r in first.rows], [r["patient"] for r in second.rows]) == \
        (5, ["2", "5"], ["9", "10"])
    assert first.counts == {"invalid": 1, "failing": 1, "waiting": 1, "up_to_date": 1, "no_consent": 1}
    attention = with_node(settings, sumehr.listing, show="attention")
    assert [r["state"] for r in attention.rows] == ["failing", "invalid"]
    assert [r["patient"] for r in with_node(settings, sumehr.listing, show="waiting").rows] == ["2"]
    with pytest.raises(CcsyncError, match="unknown sort 'colour'"):
        with_node(settings, sumehr.listing, sort="colour")
