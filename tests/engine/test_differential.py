"""The randomized differential test: random practice workloads, the fast paths against the reference path.

Two worlds, each a cloud and two PCs cloned from one initialized template, receive the same random
workload (Hypothesis stateful testing): application transactions on any database in sessions with
their own TimeZone and extra_float_digits, bursts of transactions changing one row the same way (what a
push takes as the row's net change where the cloud allows it: `counters`, which nothing constrains), a
transaction through a value the cloud refuses corrected by the next one, key changes, cascades, truncates, writes that the other
side's constraints refuse, an application transaction left open on a row while a pull runs, syncs,
pushes, pulls and logins at random points, and decisions on conflicts. World "fast" syncs with every
fast path, world "reference" with the reference path (CCSYNC_REFERENCE=1: one source transaction at a
time, change by change). Checked:

- an application transaction commits in one world exactly when it commits in the other (same state);
- every sync finishes (no PC stuck);
- the cloud's audit trigger on `visits` saw the same versions in both worlds;
- once quiet and synced, every tracked table and the conflict records are identical on every database
  of a world, and identical between the worlds (the same conflicts, refusals and decisions);
- every committed write is in the final state, or was overwritten by a writer who saw it, or is kept
  in a conflict record (the ledger: each write puts a unique token in a text column).

A short seed-fixed run is part of `make test`; `pytest --soak=MINUTES tests/engine/test_differential.py`
runs it for that long with fresh random seeds.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

import hypothesis.strategies as st
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from psycopg import conninfo, sql

from reconciler import conflicts, sync
from reconciler.config import Settings
from reconciler.errors import CcsyncError
from tests.fix_pg import Databases
from tests.engine.schemas import NOTES
from tests.fix_sync import OWNER, as_role, deployment_cloud, deployment_pc, pc_role, on_node

pytestmark = pytest.mark.one_version

SCHEMA = """
create table patients (
    id    int primary key,
    inss  text unique,
    name  text,
    phone text
);
create table contacts (
    id         int primary key,
    patient_id int not null references patients (id) on update cascade on delete cascade,
    value      text
);
""" + NOTES.lstrip("\n") + """create table counters (
    id    int primary key,
    n     int,
    label text
);
create table visits (
    id    int primary key,
    label text
);
"""
# the cloud's own history of every version of a visit (an application's audit trigger, on the cloud only)
CLOUD_AUDIT = """
create table visit_log (n serial primary key, id int, label text);
create function log_visit() returns trigger language plpgsql security definer set search_path = public as
$$ begin insert into visit_log (id, label) values (new.id, new.label); return new; end $$;
create trigger log_visit after insert or update on visits for each row execute function log_visit();
"""
# what every world starts with (written on the cloud, pulled by both PCs): rows to edit on both sides
SEED = """
insert into patients (id, inss, name, phone) select i, null, 's' || i, 's' || i from generate_series(1, 4) i;
insert into contacts (id, patient_id, value) select i, i, 's' || i from generate_series(1, 4) i;
insert into notes (patient_id, at, body) select i, '2026-03-29 01:30:00+00', 's' || i from generate_series(1, 3) i;
insert into counters (id, n, label) select i, 0, 's' || i from generate_series(1, 4) i;
insert into visits (id, label) select i, 's' || i from generate_series(1, 4) i;
"""
TABLES = ("patients", "contacts", "notes", "counters", "visits")
TOKEN_COLUMNS = {"patients": ("name", "phone"), "contacts": ("value",), "notes": ("body",), "counters": ("label",),
                 "visits": ("label",)}
NODES = ("pc-1", "pc-2")
DATABASES = ("cloud",) + NODES
POLICIES = ("manual", "cloud-wins", "node-wins", "latest-wins")
TIMES = ("2026-03-29 01:30:00+00", "2026-03-29 02:30:00+02", "2026-10-25 00:30:00+00")
ZONES = ("UTC", "Europe/Brussels", "America/St_Johns", "Asia/Kathmandu")


# -- the template practice and its clones ---------------------------------------------------------------------
def _admin(server):
    return psycopg.connect(server.dsn("postgres"), autocommit=True)


class Template:
    """An initialized practice (cloud + two PCs, empty tables), deployed with the roles a real practice uses
    (tests/fix_sync.py), cloned for every world of every example (databases copied, roles shared)."""

    def __init__(self, server):
        self.server = server
        self.databases = Databases(server)
        cloud = deployment_cloud(self.databases, SCHEMA, list(TABLES), label="tplcloud")
        with psycopg.connect(cloud.owner, autocommit=True) as conn:
            conn.execute(CLOUD_AUDIT)
        pcs = [deployment_pc(self.databases, cloud, node, label="tpl" + node.replace("-", "")) for node in NODES]
        self.names = {"cloud": conninfo.conninfo_to_dict(cloud.owner)["dbname"]}
        self.names.update({pc.name: conninfo.conninfo_to_dict(pc.local)["dbname"] for pc in pcs})
        self.local_role = conninfo.conninfo_to_dict(pcs[0].local)["user"]

    def clone(self, label: str) -> dict[str, str]:
        """{database: DSN as its owner}, plus {node + ':cloud': the cloud as that PC's role}."""
        out = {}
        with _admin(self.server) as conn:
            for db, tpl in self.names.items():
                name = f"w_{label}_{uuid.uuid4().hex[:6]}_{db.replace('-', '_')}"
                conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(tpl)))
                owner = OWNER if db == "cloud" else self.local_role
                out[db] = as_role(self.server.dsn(name), owner)
        for node in NODES:
            out[node + ":cloud"] = as_role(out["cloud"], pc_role(node))
        return out

    def drop(self, dsns) -> None:
        with _admin(self.server) as conn:
            for dsn in dsns:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                    sql.Identifier(conninfo.conninfo_to_dict(dsn)["dbname"])))


@contextlib.contextmanager
def _reference(on: bool):
    before = os.environ.get("CCSYNC_REFERENCE")
    os.environ["CCSYNC_REFERENCE"] = "1" if on else ""
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CCSYNC_REFERENCE", None)
        else:
            os.environ["CCSYNC_REFERENCE"] = before


@dataclass
class World:
    label: str
    reference: bool
    dsns: dict[str, str]
    written: set[str] = field(default_factory=set)  # tokens of committed writes
    superseded: set[str] = field(default_factory=set)  # tokens a committed writer saw and replaced or deleted

    def settings(self, node: str) -> Settings:
        return Settings(local=self.dsns[node], cloud=self.dsns[node + ":cloud"])

    def run(self, verb: str, node: str):
        with _reference(self.reference):
            return getattr(sync, verb)(self.settings(node))


def _tokens(conn) -> set[str]:
    out: set[str] = set()
    for table, cols in TOKEN_COLUMNS.items():
        for col in cols:
            out.update(r[0] for r in conn.execute(
                sql.SQL("select {c} from {t} where {c} is not null").format(c=sql.Identifier(col), t=sql.Identifier(table))))
    return out


def _rows(conn, table: str) -> list[str]:
    # timestamps in one zone whatever the server's default: rows compare as text
    return [r[0] for r in conn.execute(sql.SQL("select r::text from {} r order by 1").format(sql.Identifier(table)))]


_RECORD = ("node", "table_name", "pk", "kind", "columns", "local_row", "cloud_row", "base", "status",
           "resolution", "resolved_by", "resolved_row", "changes")


def _records(conn) -> list[tuple]:
    q = sql.SQL("select {} from ccsync.conflicts").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in _RECORD))
    return sorted(tuple(_comparable(v) for v in r) for r in conn.execute(q))


def _comparable(text: str | None) -> str | None:
    """A record's column as both worlds can hold it alike. What each world draws for itself is compared as such: a
    refused TRUNCATE keeps the PC's pull position (a snapshot of the world's own transaction ids), and a refused
    decision (a second decision on one record, taken offline on another PC) keeps the record's row as the PC
    wrote it, with its clock values, its times and the decision's random id."""
    if not text:
        return text
    return _OWN.sub(r'"\1": "(this world)"', _PULLED.sub('"pulled": "(a snapshot)"', text))


_PULLED = re.compile(r'"pulled": "\d+:\d+:[\d,]*"')
_OWN = re.compile(r'"(decision|local_hlc|cloud_hlc|detected_at|resolved_at|decided_on)": (?:"[^"]*"|\d+)')


def test_a_refused_decision_compares_alike_in_both_worlds_but_not_its_values():
    """The soak's 'conflicts: the fast paths and the reference path disagree' on a refused second decision: the two
    worlds' records differed only in the decision's random id, its clock values and times."""
    record = ('[{"op": "U", "pk": {"id": 2}, "new": {"id": 2, "decision": "%s", "local_hlc": %d, "cloud_hlc": null, '
              '"detected_at": "%s", "resolved_at": "%s", "resolution": "discarded", "label": "%s"}}]')
    one = record % ("d7d1811a-47c5-48b2-91e4-a6fe77e1a506", 117714060409569280, "2026-12-02T01:13:37.927303+00:00",
                    "2026-12-02T01:13:41.278133+00:00", "w3")
    other = record % ("080712da-c8bf-4843-b23f-d2eed58d5ffd", 117714060411338752, "2026-12-02T01:13:38.970584+00:00",
                      "2026-12-02T01:13:41.335101+00:00", "w3")
    assert one != other and _comparable(one) == _comparable(other)
    assert _comparable(one) != _comparable(one.replace('"w3"', '"w4"'))  # a written value still counts
    assert _comparable(one.replace('"resolution": "discarded"', '"resolution": "kept_cloud"')) != _comparable(one)
    assert _comparable(None) is None


# -- the workload ---------------------------------------------------------------------------------------------
KEYS = st.integers(1, 4)
statements = st.one_of(
    st.tuples(st.just("ins_patient"), KEYS, st.sampled_from(["A", "B", "C", None])),
    st.tuples(st.just("upd_patient"), KEYS, st.sampled_from(["name", "phone", "both"])),
    st.tuples(st.just("del_patient"), KEYS),
    st.tuples(st.just("rekey_patient"), KEYS, KEYS),
    st.tuples(st.just("inss_patient"), KEYS, st.sampled_from(["A", "B", "C", None])),
    st.tuples(st.just("ins_contact"), KEYS, KEYS),
    st.tuples(st.just("upd_contact"), KEYS),
    st.tuples(st.just("del_contact"), KEYS),
    st.tuples(st.just("rekey_contact"), KEYS, KEYS),
    st.tuples(st.just("ins_note"), KEYS, st.sampled_from(TIMES)),
    st.tuples(st.just("upd_note"), KEYS, st.sampled_from(TIMES)),
    st.tuples(st.just("del_note"), KEYS, st.sampled_from(TIMES)),
    st.tuples(st.just("move_contact"), KEYS, KEYS),
    st.tuples(st.just("upd_counter"), KEYS),
    st.tuples(st.just("ins_counter"), KEYS),
    st.tuples(st.just("upd_visit"), KEYS),
    st.tuples(st.just("ins_visit"), KEYS),
    st.tuples(st.just("truncate"), st.sampled_from(["contacts", "notes", "patients, contacts, notes"])),
)


class Tokens:
    def __init__(self):
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"w{self.n}"


def _statement(conn, stmt: tuple, token) -> None:
    kind, *args = stmt
    if kind == "ins_patient":
        conn.execute("insert into patients (id, inss, name, phone) values (%s, %s, %s, %s)", (args[0], args[1], token(), token()))
    elif kind == "upd_patient":
        cols = ["name", "phone"] if args[1] == "both" else [args[1]]
        conn.execute(sql.SQL("update patients set {} where id = %s").format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols)),
            [token() for _ in cols] + [args[0]])
    elif kind == "del_patient":
        conn.execute("delete from patients where id = %s", (args[0],))
    elif kind == "rekey_patient":  # its contacts follow (ON UPDATE CASCADE)
        conn.execute("update patients set id = %s where id = %s", (args[1] + 10, args[0]))
    elif kind == "inss_patient":
        conn.execute("update patients set inss = %s where id = %s", (args[1], args[0]))
    elif kind == "ins_contact":
        conn.execute("insert into contacts (id, patient_id, value) values (%s, %s, %s)", (args[0], args[1], token()))
    elif kind == "upd_contact":
        conn.execute("update contacts set value = %s where id = %s", (token(), args[0]))
    elif kind == "del_contact":
        conn.execute("delete from contacts where id = %s", (args[0],))
    elif kind == "rekey_contact":
        conn.execute("update contacts set id = %s where id = %s", (args[1] + 10, args[0]))
    elif kind == "move_contact":
        conn.execute("update contacts set patient_id = %s where id = %s", (args[1], args[0]))
    elif kind == "upd_counter":
        conn.execute("update counters set n = coalesce(n, 0) + 1, label = %s where id = %s", (token(), args[0]))
    elif kind == "ins_counter":
        conn.execute("insert into counters (id, n, label) values (%s, 0, %s)", (args[0], token()))
    elif kind == "upd_visit":
        conn.execute("update visits set label = %s where id = %s", (token(), args[0]))
    elif kind == "ins_visit":
        conn.execute("insert into visits (id, label) values (%s, %s)", (args[0], token()))
    elif kind == "ins_note":
        conn.execute("insert into notes (patient_id, at, body) values (%s, %s, %s)", (args[0], args[1], token()))
    elif kind == "upd_note":
        conn.execute("update notes set body = %s where patient_id = %s and at = %s", (token(), args[0], args[1]))
    elif kind == "del_note":
        conn.execute("delete from notes where patient_id = %s and at = %s", (args[0], args[1]))
    else:
        conn.execute(sql.SQL("truncate {}").format(sql.SQL(args[0])))  # one of three constant lists above


def _session(conn, zone: str, digits: int) -> None:
    conn.execute("select set_config('TimeZone', %s, false), set_config('extra_float_digits', %s, false)",
                 (zone, str(digits)))


# -- the machine ----------------------------------------------------------------------------------------------
class Differential(RuleBasedStateMachine):
    template: Template = None  # set by the test

    def __init__(self):
        super().__init__()
        self.worlds: list[World] = []
        self.tokens = Tokens()

    @initialize(policies=st.tuples(*[st.sampled_from(POLICIES)] * len(TABLES)))
    def setup(self, policies):
        self.worlds = [World("fast", False, {}), World("ref", True, {})]
        for w in self.worlds:
            w.dsns = self.template.clone(w.label)
            for db in DATABASES:
                with psycopg.connect(w.dsns[db], autocommit=True) as conn:
                    for table, policy in zip(TABLES, policies):
                        conn.execute("update ccsync.tracked set policy = %s where table_name = %s",
                                     (policy, f"public.{table}"))
            with psycopg.connect(w.dsns["cloud"], autocommit=True) as conn:
                conn.execute(SEED)
            for node in NODES:
                w.run("pull", node)

    def teardown(self):
        for w in self.worlds:
            self.template.drop([dsn for db, dsn in w.dsns.items() if db in DATABASES])

    # -- application writes ------------------------------------------------------------------------------------
    @rule(db=st.sampled_from(DATABASES), stmts=st.lists(statements, min_size=1, max_size=4),
          zone=st.sampled_from(ZONES), digits=st.sampled_from([0, 3]))
    def write(self, db, stmts, zone, digits):
        outcomes = []
        for w in self.worlds:
            token = _replay(self.tokens)
            outcomes.append(self._write(w, db, stmts, zone, digits, token))
        self.tokens.n = max(self.tokens.n, *(o[1] for o in outcomes))
        assert outcomes[0][0] == outcomes[1][0], f"the application's transaction {stmts} on {db}: " \
                                                 f"{outcomes[0][0]} with the fast paths, {outcomes[1][0]} with the reference"

    @rule(db=st.sampled_from(DATABASES), stmt=st.one_of(
              st.tuples(st.just("upd_patient"), KEYS, st.sampled_from(["name", "phone", "both"])),
              st.tuples(st.just("upd_contact"), KEYS), st.tuples(st.just("upd_note"), KEYS, st.sampled_from(TIMES)),
              st.tuples(st.just("upd_counter"), KEYS), st.tuples(st.just("upd_visit"), KEYS)),
          times=st.integers(2, 5), zone=st.sampled_from(ZONES), digits=st.sampled_from([0, 3]))
    def burst(self, db, stmt, times, zone, digits):
        """One row changed by several transactions in a row, the same columns each time (a counter): what a push
        takes as the row's net change."""
        for _ in range(times):
            self.write(db, [stmt], zone, digits)

    @rule(node=st.sampled_from(NODES), kind=st.sampled_from(["inss", "contact"]), key=KEYS, other=KEYS,
          value=st.sampled_from(["A", "B"]), zone=st.sampled_from(ZONES), digits=st.sampled_from([0, 3]))
    def refused_then_corrected(self, node, kind, key, other, value, zone, digits):
        """The cloud moves on (an INSS taken, a patient deleted with its contacts) before `node` pulls; `node` then
        commits a transaction through a value the cloud refuses, with another change, and corrects the value in
        the next transaction: the cloud must refuse the first whole, as change by change (a net change of the
        corrected row would hide the refused value and let the other change through)."""
        if kind == "inss":
            self.write("cloud", [("inss_patient", other, value)], zone, digits)
            self.write(node, [("inss_patient", key, value), ("upd_counter", other)], zone, digits)
            self.write(node, [("inss_patient", key, None)], zone, digits)
        else:
            self.write("cloud", [("del_patient", other)], zone, digits)
            self.write(node, [("move_contact", key, other), ("upd_visit", key)], zone, digits)
            self.write(node, [("move_contact", key, key)], zone, digits)

    def _write(self, w: World, db: str, stmts, zone, digits, token) -> tuple[str, int]:
        with psycopg.connect(w.dsns[db]) as conn:
            _session(conn, zone, digits)
            before = _tokens(conn)
            outcome = []
            for stmt in stmts:  # an application that goes on after a failed statement
                try:
                    with conn.transaction():
                        _statement(conn, stmt, token)
                    outcome.append("ok")
                except psycopg.Error as exc:
                    outcome.append(type(exc).__name__)
            after = _tokens(conn)
            try:
                conn.commit()
            except psycopg.Error as exc:  # a deferred constraint
                return f"{outcome}, commit: {type(exc).__name__}", token.n
        w.superseded |= before - after
        w.written |= after - before
        return f"{outcome}, committed", token.n

    @precondition(lambda self: self.worlds)
    @rule(node=st.sampled_from(NODES), key=KEYS, zone=st.sampled_from(ZONES))
    def edit_while_pulling(self, node, key, zone):
        """An application transaction holds a row a pull is about to apply (issue 12, item 1)."""
        start = self.tokens.n
        ends = []
        for w in self.worlds:
            token = _replay(self.tokens, start)
            ends.append(token.n)
            with psycopg.connect(w.dsns["cloud"], autocommit=True) as cloud:
                cloud_token = token()
                row = cloud.execute("update patients p set phone = %s from (select id, phone from patients where id = %s "
                                    "for update) o where p.id = o.id returning o.phone", (cloud_token, key)).fetchone()
                if row:
                    w.written.add(cloud_token)
                    w.superseded.add(row[0])
            with psycopg.connect(w.dsns[node]) as app:
                _session(app, zone, 0)
                app_token = token()
                old = app.execute("select phone from patients where id = %s", (key,)).fetchone()
                app.execute("update patients set phone = %s where id = %s", (app_token, key))
                puller = threading.Thread(target=self._pull_quietly, args=(w, node))
                puller.start()
                _wait_blocked(w.dsns[node], puller)
                app.commit()
                puller.join(60)
                assert not puller.is_alive(), "the pull never finished"
            if old is not None:
                w.written.add(app_token)
                if old[0] is not None:
                    w.superseded.add(old[0])
            ends[-1] = token.n
        self.tokens.n = max(ends)
        failures = [getattr(w, "pull_error", None) for w in self.worlds]
        assert failures == [None, None], f"a pull failed: {failures}"

    @staticmethod
    def _pull_quietly(w: World, node: str) -> None:
        w.pull_error = None
        try:
            w.run("pull", node)
        except Exception as exc:  # reported by the rule, in the test's thread
            w.pull_error = f"{type(exc).__name__}: {exc}"

    # -- syncs and decisions -------------------------------------------------------------------------------------
    @rule(verb=st.sampled_from(["sync", "push", "pull", "login"]), node=st.sampled_from(NODES))
    def sync_one(self, verb, node):
        for w in self.worlds:
            self._sync(w, verb, node)

    def _sync(self, w: World, verb: str, node: str) -> None:
        try:
            w.run(verb, node)
        except CcsyncError as exc:
            raise AssertionError(f"{w.label}: `{verb}` on {node} is stuck: {exc}") from None

    @rule(node=st.sampled_from(NODES), pick=st.integers(0, 5), keep=st.sampled_from(["local", "cloud", "merged"]))
    def decide(self, node, pick, keep):
        outcomes = []
        for w in self.worlds:
            records = sorted(on_node(w.dsns[node], conflicts.list_conflicts),
                             key=lambda c: (c["node"], c["table_name"], str(c["pk"]), c["kind"], str(c["local_row"])))
            if not records:
                outcomes.append("no record")
                continue
            c = records[pick % len(records)]
            choice = keep  # each world decides the same way (`keep` is the rule's, not this world's)
            if c["kind"] == "refused":
                choice = "apply-again" if keep == "local" else "discard"
            merged = None
            if choice == "merged":
                merged = {"name": "merged"} if c["table_name"] == "public.patients" else {}
            try:
                on_node(w.dsns[node], conflicts.resolve, c["id"], choice, by=f"person at {node}", merged=merged)
                outcomes.append(f"{choice} on {c['kind']} of {c['table_name']} {c['pk']}")
            except CcsyncError as exc:
                if choice == "apply-again" and "cannot be applied again" in str(exc):
                    # this PC's own constraints refuse it too: said in one line, nothing written
                    outcomes.append(f"{choice} on {c['kind']} of {c['table_name']} {c['pk']}: refused here")
                    continue
                if "this PC's constraints refuse that decision" in str(exc):
                    # a version whose parent is gone here (or now referenced): one line, nothing written
                    outcomes.append(f"{choice} on {c['kind']} of {c['table_name']} {c['pk']}: refused here")
                    continue
                raise AssertionError(f"{w.label}: resolving {c['kind']} on {node} failed: {exc}") from None
        assert outcomes[0] == outcomes[1], f"a decision on {node}: {outcomes[0]} with the fast paths, " \
                                           f"{outcomes[1]} with the reference"

    @rule()
    def quiet(self):
        """Everybody syncs until nothing moves, then everything is checked."""
        for w in self.worlds:
            for _ in range(2):
                for node in NODES:
                    self._sync(w, "sync", node)
        states = [self._converged(w) for w in self.worlds]
        fast, ref = states
        for table in TABLES + ("conflicts", "visit_log"):
            assert fast[table] == ref[table], f"{table}: the fast paths and the reference path disagree"
        for w in self.worlds:
            self._ledger(w, states[0])

    def _converged(self, w: World) -> dict:
        state = {}
        for db in DATABASES:
            with psycopg.connect(w.dsns[db], autocommit=True) as conn:
                conn.execute("set timezone = 'UTC'")
                here = {t: _rows(conn, t) for t in TABLES}
                here["conflicts"] = _records(conn)
            if not state:
                state = here
                continue
            for table, rows in here.items():
                assert rows == state[table], f"{w.label}: {table} differs between the cloud and {db}"
        with psycopg.connect(w.dsns["cloud"], autocommit=True) as conn:  # every version the cloud saw, as a multiset
            state["visit_log"] = sorted(r[0] for r in conn.execute("select format('%s %s', id, label) from visit_log"))
            # a refused transaction's changes, kept whole in its record (for the ledger: their journal ids and clocks
            # are each world's own)
            state["refused"] = [r[0] for r in conn.execute(
                "select changes::text from ccsync.conflicts where kind = 'refused' and changes is not null")]
        return state

    def _ledger(self, w: World, state: dict) -> None:
        final = " ".join(" ".join(rows) for t, rows in state.items() if t not in ("conflicts", "visit_log", "refused"))
        records = " ".join(" ".join(str(v) for v in r) for r in state["conflicts"]) + " " + " ".join(state["refused"])
        kept = set(_words(final)) | set(_words(records))
        lost = sorted(w.written - kept - w.superseded, key=lambda t: int(t[1:]))
        assert not lost, f"{w.label}: committed write(s) {lost} are nowhere: not in the tables, not in a conflict record"


def _words(text: str) -> list[str]:
    return re.findall(r"\bw\d+\b", text)


def _replay(tokens: Tokens, start: int | None = None) -> Tokens:
    """A token source starting where the shared one is: both worlds write the same tokens."""
    t = Tokens()
    t.n = tokens.n if start is None else start
    return t


def _wait_blocked(dsn: str, puller: threading.Thread, timeout: float = 5.0) -> None:
    """Until the pull waits for a lock on this database, or has finished."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while puller.is_alive() and time.monotonic() < deadline:
            waiting = conn.execute(
                "select exists (select 1 from pg_stat_activity where datname = current_database() "
                "and wait_event_type = 'Lock')").fetchone()[0]
            if waiting:
                return
            time.sleep(0.02)


def _described(exc: BaseException) -> str:
    """A failure with the steps that reproduce it (Hypothesis puts them in the exception's notes)."""
    parts = [f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])]
    for sub in getattr(exc, "exceptions", ()):  # several distinct failures
        parts.append(_described(sub))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def template(pg):
    tpl = Template(pg)
    yield tpl
    tpl.databases.drop_all()


def test_fast_paths_agree_with_the_reference_path(template, request):
    minutes = request.config.getoption("--soak")
    Differential.template = template
    if minutes:  # fresh random seeds until the time is up; every failure (shrunk) is kept and reported at the end
        deadline = time.monotonic() + 60 * minutes
        found: list[str] = []
        runs = 0
        while time.monotonic() < deadline:
            runs += 1
            try:
                run_state_machine_as_test(Differential, settings=settings(
                    max_examples=5, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate, Phase.shrink], database=None))
            except Exception as exc:  # noqa: BLE001  (a soak reports every kind of failure it meets)
                found.append(_described(exc))
                print(f"\n--- soak failure {len(found)}:\n{found[-1]}\n", flush=True)
        print(f"\nsoak: {runs} run(s) of up to 5 examples in {minutes} minute(s), {len(found)} failure(s)", flush=True)
        assert not found, f"the soak found {len(found)} failure(s); each is printed above, shrunk"
    else:
        run_state_machine_as_test(Differential, settings=settings(
            max_examples=6, stateful_step_count=30, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink], database=None))
