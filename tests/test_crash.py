"""Crashes, outages and concurrency: no lost write, exactly once, no gap, convergence (DESIGN.md, Invariants).

The reconciler runs as a real subprocess that SIGKILLs itself at a named checkpoint (CCSYNC_FAULT, see
reconciler/_faults.py); a rerun must end exactly as a run that was never interrupted. Every change the
reconciler applies is also written by a plain trigger to an `applied` table on the target, so a change
applied twice shows even where applying it again would leave the row as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from reconciler import sync
from reconciler.pgserver import PgServer
from tests.fix_pg import TEST_SETTINGS, Databases
from tests.fix_sync import Practice

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("patients", "encounters")
CHUNK = 7  # entries per apply transaction in the subprocesses: a window applies in several chunks

# A counting run: every checkpoint passes, and at exit the number of passes per name goes to a JSON file.
COUNTING = """
import atexit, json, os
import reconciler._faults as faults
class Passes(dict):
    def __contains__(self, name): return True
    def __missing__(self, name): return 10**9
faults._left = Passes()
atexit.register(lambda: open(os.environ["CCSYNC_COUNT_FILE"], "w").write(
    json.dumps({name: 10**9 - left for name, left in faults._left.items()})))
import cli; cli.main()
"""


# -- helpers --------------------------------------------------------------------------------------------
def ccsync_env(fault: str | None = None, chunk: int = CHUNK) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCSYNC_")}
    env["CCSYNC_CHUNK"] = str(chunk)
    if fault:
        env["CCSYNC_FAULT"] = fault
    return env


def ccsync(*args: str, fault: str | None = None, count_file: Path | None = None, chunk: int = CHUNK,
           timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI in its own process, as the service would (killed at a checkpoint when `fault` says so)."""
    env = ccsync_env(fault, chunk)
    code = "import cli; cli.main()"
    if count_file:
        env["CCSYNC_COUNT_FILE"] = str(count_file)
        code = COUNTING
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def ccsync_bg(*args: str, chunk: int = CHUNK) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", *args], env=ccsync_env(chunk=chunk),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stderr
    return done


def sides_args(p: Practice, node: str = "pc-1") -> list[str]:
    return ["--local", p.nodes[node], "--cloud", p.cloud]


def tx(dsn: str, *statements: str) -> None:
    """One transaction of several statements."""
    with psycopg.connect(dsn) as conn:
        with conn.transaction():
            for s in statements:
                conn.execute(s)


def scalar(p: Practice, dsn: str, query: str, params=None):
    return p.sql(dsn, query, params)[0][0]


def wait_for(condition, what: str, timeout: float = 60) -> None:
    """Wait for an event that can only be observed by asking (a lock wait, a row)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def waiting_on_lock(dsn: str, table: str | None = None) -> bool:
    """A ccsync connection of this database waits for a lock (on `table` when given)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "select exists (select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where not l.granted and a.application_name = 'ccsync' and a.datname = current_database() "
            "and (%(t)s::text is null or l.relation = to_regclass(%(t)s)))",
            {"t": table},
        ).fetchone()[0]


def settle(p: Practice, node: str = "pc-1", rounds: int = 5) -> None:
    """Sync until a sync moves nothing."""
    for _ in range(rounds):
        if sync.sync(p.settings(node))["changes"] == 0:
            return
    raise AssertionError(f"{node} still moves changes after {rounds} syncs")


def log_applied(p: Practice, dsn: str, tables=TABLES) -> None:
    """A plain trigger on the target's tables: one row per change the reconciler applies (ccsync.origin set)."""
    p.sql(dsn, """
        create table applied (tbl text, op text, origin text, old jsonb, new jsonb);
        create function log_applied() returns trigger language plpgsql as $$
        begin
            if coalesce(current_setting('ccsync.origin', true), '') <> '' then
                insert into applied values (tg_table_name, tg_op, current_setting('ccsync.origin'),
                    case when tg_op <> 'INSERT' then to_jsonb(old) end,
                    case when tg_op <> 'DELETE' then to_jsonb(new) end);
            end if;
            return null;
        end $$;
    """)
    for t in tables:
        p.sql(dsn, sql.SQL("create trigger zz_applied after insert or update or delete on {} for each row "
                           "execute function log_applied()").format(sql.Identifier(t)))


def applied(p: Practice, dsn: str, *, changing_only: bool = False) -> list:
    """What the reconciler applied on a database, as a sorted multiset (apply order may differ by chunking).

    On a node, a cloud change reaches a row either by pull or, for a row that had a local change waiting,
    by a refresh of the whole row: which one depends on timing, so there only the writes that changed
    something are compared (applying an old change again after a newer one does change something).
    """
    where = "where old is distinct from new" if changing_only else ""
    return sorted(p.sql(dsn, f"select tbl, op, origin, old::text, new::text from applied {where}"), key=repr)


def conflict_records(p: Practice, dsn: str) -> list:
    return p.sql(dsn, "select node, table_name, pk::text, kind, columns, status, local_row::text, cloud_row::text "
                      "from ccsync.conflicts order by table_name, pk::text")


# -- 1. SIGKILL at a checkpoint, then a rerun ----------------------------------------------------------------
SEED = [
    "insert into patients (id, name, balance) select g, 'p' || g, 0 from generate_series(1, 40) g",
    "insert into encounters (id, patient_id, at, summary) "
    "select g, g, '2024-01-01 10:00+00', 'seed' from generate_series(1, 20) g",
]


def node_workload(dsn: str) -> None:
    """Offline work on the node: rows 1-10, 33-34 and 100-199 are the node's; 5 and 7 the cloud changes too."""
    tx(dsn,  # parents and children in one transaction
       "insert into patients (id, name, balance) select g, 'n' || g, 0 from generate_series(101, 105) g",
       "insert into encounters (id, patient_id, at, summary) "
       "select g + 900, g, '2024-02-01 09:00+00', 'node' from generate_series(101, 105) g")
    for i in range(12):  # increments: one applied twice would show in the balance
        if i % 2 == 0:
            tx(dsn, "update patients set balance = balance + 1 where id between 1 and 10")
        else:
            tx(dsn, f"update patients set balance = balance + 1 where id = {1 + i % 3}",
               f"update patients set balance = balance + 1 where id = {104 + i % 2}")
    tx(dsn, "update patients set phone = 'node-5' where id = 5")  # the cloud changes its notes: merged
    tx(dsn, "update patients set phone = 'node-7' where id = 7")  # the cloud changes its phone: a conflict
    tx(dsn,  # the same rows several times in one transaction
       "insert into patients (id, name, balance) values (106, 'n106', 0)",
       "insert into encounters (id, patient_id, at, summary) values (1006, 106, '2024-02-02 09:00+00', 'first')",
       "update encounters set summary = 'edited' where id = 1006",
       "update patients set balance = balance + 10 where id = 106",
       "update patients set balance = balance + 10 where id = 106")
    tx(dsn, "update patients set id = 133 where id = 33")  # a primary key change, then a change of the new key
    tx(dsn, "update patients set balance = balance + 1 where id = 133")
    tx(dsn, "delete from encounters where id = 1002", "delete from patients where id = 102")
    tx(dsn, "delete from patients where id = 34")
    tx(dsn, "insert into patients (id, name) values (107, 'gone')", "delete from patients where id = 107")
    for i in range(108, 111):
        tx(dsn, f"insert into patients (id, name, balance) values ({i}, 'n{i}', 0)",
           f"insert into encounters (id, patient_id, at, summary) values ({i * 10}, {i}, '2024-02-03 09:00+00', 'n')")
        tx(dsn, f"update patients set balance = balance + 1 where id = {i}")


def cloud_workload(dsn: str) -> None:
    """Online work on the cloud: rows 11-20, 36-37 and 300-399 are the cloud's; 5 and 7 the node changes too."""
    tx(dsn,
       "insert into patients (id, name, balance) select g, 'c' || g, 0 from generate_series(301, 305) g",
       "insert into encounters (id, patient_id, at, summary) "
       "select g + 2700, g, '2024-03-01 09:00+00', 'cloud' from generate_series(301, 305) g")
    for i in range(12):
        if i % 2 == 0:
            tx(dsn, "update patients set balance = balance + 1 where id between 11 and 20")
        else:
            tx(dsn, f"update patients set balance = balance + 1 where id = {11 + i % 3}",
               f"update encounters set summary = summary || '+' where id = {11 + i % 3}")
    tx(dsn, "update patients set notes = 'cloud-5' where id = 5")
    tx(dsn, "update patients set phone = 'cloud-7' where id = 7")
    tx(dsn,
       "insert into patients (id, name, balance) values (306, 'c306', 0)",
       "insert into encounters (id, patient_id, at, summary) values (3006, 306, '2024-03-02 09:00+00', 'first')",
       "update encounters set summary = 'edited' where id = 3006",
       "update patients set balance = balance + 10 where id = 306")
    tx(dsn, "update patients set id = 336 where id = 36")
    tx(dsn, "update patients set balance = balance + 1 where id = 336")
    tx(dsn, "delete from encounters where id = 3002", "delete from patients where id = 302")
    tx(dsn, "delete from patients where id = 37")
    for i in range(307, 310):
        tx(dsn, f"insert into patients (id, name, balance) values ({i}, 'c{i}', 0)",
           f"insert into encounters (id, patient_id, at, summary) values ({i * 10}, {i}, '2024-03-03 09:00+00', 'c')")
        tx(dsn, f"update patients set balance = balance + 1 where id = {i}")


def later_writes(p: Practice) -> None:
    """Writes between the crash and the rerun, on rows only one side touches."""
    tx(p.nodes["pc-1"], "update patients set balance = balance + 1 where id between 1 and 4",
       "insert into patients (id, name, balance) values (111, 'n111', 1)")
    tx(p.cloud, "update patients set balance = balance + 1 where id between 11 and 14",
       "insert into patients (id, name, balance) values (311, 'c311', 1)")


def final_state(p: Practice) -> dict:
    """Everything that must be the same after a crash and a rerun as after a run never interrupted."""
    node = p.nodes["pc-1"]
    return {
        **{f"cloud {t}": p.rows(p.cloud, t) for t in TABLES},
        **{f"node {t}": p.rows(node, t) for t in TABLES},
        "applied on the cloud": applied(p, p.cloud),
        "applied on the node": applied(p, node, changing_only=True),
        "conflicts on the cloud": conflict_records(p, p.cloud),
        "conflicts on the node": conflict_records(p, node),
        "node journal": scalar(p, node, "select count(*) from ccsync.journal"),
        "rows waiting for a refresh": scalar(p, node, "select count(*) from ccsync.refresh"),
    }


def clone_database(databases: Databases, dsn: str, label: str) -> str:
    source = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    name = f"t_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(databases.server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {} strategy file_copy").format(
            sql.Identifier(name), sql.Identifier(source)))
    databases.names.append(name)
    return databases.server.dsn(name)


def clone_practice(databases: Databases, template: Practice) -> Practice:
    """A copy of a prepared practice (CREATE DATABASE … TEMPLATE): the same start for every case, quickly."""
    p = object.__new__(Practice)
    p.databases = databases
    p.cloud = clone_database(databases, template.cloud, "cloud")
    p.nodes = {name: clone_database(databases, dsn, name) for name, dsn in template.nodes.items()}
    return p


@pytest.fixture(scope="module")
def crash_template(pg):
    """Per server, once: a practice whose node and cloud both hold offline work, the `applied` log on both."""
    databases = Databases(pg)
    p = Practice(databases, nodes=())
    for s in SEED:
        p.sql(p.cloud, s)
    p.add_node("pc-1")
    for dsn in (p.cloud, p.nodes["pc-1"]):
        log_applied(p, dsn)
    node_workload(p.nodes["pc-1"])
    cloud_workload(p.cloud)
    yield p
    databases.drop_all()


# plan: the commands run one after the other; a case kills one of them at a checkpoint, at its first pass,
# at the middle one or at the last one in an uninterrupted run of the same plan (counted, not guessed).
PLANS = {"sync": ("sync",), "pull, push": ("pull", "push")}
KILLS = [
    ("sync", "sync", [("push.staged", "first")]),
    ("sync", "sync", [("push.step", "first")]),
    ("sync", "sync", [("push.step", "middle")]),
    ("sync", "sync", [("push.step", "last")]),
    ("sync", "sync", [("push.conflict", "first")]),
    ("sync", "sync", [("push.applied", "middle")]),
    ("sync", "sync", [("push.committed", "first")]),
    ("sync", "sync", [("push.committed", "middle")]),
    ("sync", "sync", [("push.committed", "last")]),
    ("sync", "sync", [("push.forgotten", "middle")]),
    ("sync", "sync", [("push.forgotten", "last")]),
    ("sync", "sync", [("pull.staged", "first")]),
    ("sync", "sync", [("pull.step", "first")]),
    ("sync", "sync", [("pull.step", "middle")]),
    ("sync", "sync", [("pull.step", "last")]),
    ("sync", "sync", [("pull.applied", "last")]),
    ("sync", "sync", [("pull.committed", "first")]),
    ("sync", "sync", [("pull.committed", "middle")]),
    ("sync", "sync", [("pull.committed", "last")]),
    # killed twice: the rerun is killed too, at the first pass of another checkpoint
    ("sync", "sync", [("push.committed", "middle"), ("push.step", 1), ("pull.committed", 1)]),
    # a pull with local changes waiting (rows skipped, refreshed after the push)
    ("pull, push", "pull", [("pull.step", "middle")]),
    ("pull, push", "pull", [("pull.committed", "middle")]),
    ("pull, push", "push", [("push.step", "middle")]),
    ("pull, push", "push", [("refresh.applied", "first")]),
]


def case_id(plan, command, kills) -> str:
    return f"{plan.replace(', ', '-')}:{command}:" + "+".join(f"{c}@{w}" for c, w in kills)


class Reference:
    """Per server, each plan run uninterrupted: its final state and the checkpoint passes of each command."""

    def __init__(self, databases: Databases, template: Practice, tmp: Path):
        self.databases, self.template, self.tmp = databases, template, tmp
        self.runs: dict[str, tuple[dict, dict]] = {}

    def __call__(self, plan: str) -> tuple[dict, dict]:
        if plan not in self.runs:
            p = clone_practice(self.databases, self.template)
            passes = {}
            for i, command in enumerate(PLANS[plan]):
                count_file = self.tmp / f"{uuid.uuid4().hex}.json"
                ok(ccsync(command, *sides_args(p), count_file=count_file))
                passes[command] = json.loads(count_file.read_text())
            later_writes(p)
            settle(p)
            p.assert_converged()
            self.runs[plan] = (final_state(p), passes)
        return self.runs[plan]


@pytest.fixture(scope="module")
def reference(pg, crash_template, tmp_path_factory):
    databases = Databases(pg)
    yield Reference(databases, crash_template, tmp_path_factory.mktemp("passes"))
    databases.drop_all()


def nth(passes: int, where) -> int:
    return where if isinstance(where, int) else {"first": 1, "middle": (passes + 1) // 2, "last": passes}[where]


@pytest.mark.parametrize("plan, command, kills", [pytest.param(*k, id=case_id(*k)) for k in KILLS])
def test_sigkill_at_a_checkpoint_then_rerun_ends_as_an_uninterrupted_run(
        databases, crash_template, reference, plan, command, kills):
    expected, passes = reference(plan)
    p = clone_practice(databases, crash_template)
    for cmd in PLANS[plan]:
        if cmd == command:
            for checkpoint, where in kills:
                assert passes[cmd].get(checkpoint, 0) > 0, f"{cmd} never passes {checkpoint}: the case tests nothing"
                fault = f"{checkpoint}:{nth(passes[cmd][checkpoint], where)}"
                killed = ccsync(cmd, *sides_args(p), fault=fault)
                assert killed.returncode == -signal.SIGKILL, f"{cmd} not killed at {fault}: {killed.stderr}"
        ok(ccsync(cmd, *sides_args(p)))
    later_writes(p)
    settle(p)
    p.assert_converged()
    actual = final_state(p)
    for key in expected:
        assert actual[key] == expected[key], f"{key}: not as in the uninterrupted run"


def test_the_crash_workload_ends_with_the_expected_values(reference):
    """The reference itself: the counters hold every increment once, the conflict and the merge are there."""
    state, _ = reference("sync")
    patients = {int(r[0].strip("()").split(",")[0]): r[0] for r in state["cloud patients"]}
    balance = {k: v.rsplit(",", 1)[1].rstrip(")") for k, v in patients.items()}
    assert balance[1] == "11.00"  # 6 transactions on 1-10, 2 on id 1 (i = 3, 9), 1 later
    assert balance[2] == "9.00" and balance[3] == "9.00"  # 6 + 2 + 1 later (i = 1, 7 and i = 5, 11)
    assert balance[5] == "6.00" and balance[10] == "6.00"
    assert balance[11] == "9.00" and balance[20] == "6.00"
    assert balance[106] == "20.00" and balance[133] == "1.00" and balance[336] == "1.00"
    assert {33, 34, 36, 37, 102, 107, 302} & set(patients) == set()
    assert "node-5" in patients[5] and "cloud-5" in patients[5]  # disjoint columns merged
    assert "cloud-7" in patients[7]  # the cloud's version stays
    [conflict] = state["conflicts on the cloud"]
    assert conflict[:6] == ("pc-1", "public.patients", '{"id": 7}', "update_update", ["phone"], "open")
    assert state["node journal"] == 0 and state["rows waiting for a refresh"] == 0


# -- 2. the cloud stops mid-push -----------------------------------------------------------------------------
@pytest.fixture
def cloud_server(pg, tmp_path):
    """A cloud server of its own, to stop and restart."""
    server = PgServer(tmp_path / "cloud", bindir=pg.bindir, settings=TEST_SETTINGS)
    server.init().start()
    yield server
    server.destroy()


def test_cloud_stopped_mid_push_fails_cleanly_and_the_rerun_delivers_everything_once(databases, cloud_server):
    p = Practice(Databases(cloud_server), nodes=())
    p.databases = databases  # the nodes live on the shared server
    node = p.add_node("pc-1")
    log_applied(p, p.cloud)
    with psycopg.connect(node, autocommit=True) as conn:
        for t in range(400):  # 20,000 rows in 400 transactions, then 100 increments of rows 1-100
            with conn.transaction():
                conn.execute("insert into patients (id, name) select g, 'p' || g from generate_series(%s, %s) g",
                             (t * 50 + 1, t * 50 + 50))
        for _ in range(100):
            conn.execute("update patients set balance = balance + 1 where id <= 100")
    entries = scalar(p, node, "select count(*) from ccsync.journal")
    assert entries == 30_000

    # a cloud transaction holds the key of a row from the middle of the backlog: the push stops there
    blocker = psycopg.connect(p.cloud)
    blocker.execute("insert into patients (id, name) values (10001, 'in the way')")
    push = ccsync_bg("push", *sides_args(p), chunk=1000)
    try:
        wait_for(lambda: waiting_on_lock(p.cloud), "the push to wait in the middle of the backlog")
        cloud_server.stop("immediate")
        _, stderr = push.communicate(timeout=120)
    finally:
        push.kill()
        blocker.close()
    assert push.returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in stderr, stderr
    error = scalar(p, node, "select error from ccsync.history where direction = 'push' order by id desc limit 1")
    assert error and scalar(p, node, "select last_error from ccsync.state")

    cloud_server.start()
    arrived = scalar(p, p.cloud, "select count(*) from patients")
    assert 0 < arrived < 20_000  # the outage was in the middle of the backlog
    ok(ccsync("push", *sides_args(p), chunk=1000))
    assert p.rows(p.cloud) == p.rows(node)
    assert scalar(p, p.cloud, "select count(*), sum(balance) from patients") is not None
    assert p.sql(p.cloud, "select count(*), sum(balance) from patients") == [(20_000, 10_000)]
    assert p.sql(p.cloud, "select count(*), count(distinct (op, new::text)) from applied") == [(entries, entries)]
    assert scalar(p, node, "select count(*) from ccsync.journal") == 0
    assert scalar(p, node, "select last_error from ccsync.state") is None


# -- 3. concurrent writers -----------------------------------------------------------------------------------
WRITERS = 50


def test_fifty_concurrent_writers_while_the_node_syncs_lose_nothing(practice):
    """50 writers on the node (inserts, own and shared counters) and one on the cloud, while sync runs."""
    p = practice
    node = p.nodes["pc-1"]
    # 0: shared by the node's writers; 1-50: one per writer; 99: the cloud's
    p.sql(p.cloud, "insert into patients (id, name, balance) select g, 'counter ' || g, 0 "
                   "from generate_series(0, %s) g union all select 99, 'cloud counter', 0", (WRITERS,))
    p.sync("pc-1")
    committed = [0] * (WRITERS + 1)  # per node writer; [0] for the cloud writer
    errors: list[BaseException] = []
    started = threading.Barrier(WRITERS + 2)
    synced = threading.Event()  # three syncs ran while the writers wrote
    stop = threading.Event()

    def guarded(fn):
        def run(*args):
            try:
                fn(*args)
            except BaseException as exc:  # reported by the test, not lost in a thread
                errors.append(exc)
                started.abort()
                synced.set()
                stop.set()
        return run

    @guarded
    def node_writer(w: int):
        with psycopg.connect(node) as conn:
            started.wait()
            k = 0
            while k < 10 or (not synced.is_set() and k < 500):
                k += 1
                with conn.transaction():
                    conn.execute("insert into patients (id, name) values (%s, 'w')", (w * 1000 + k,))
                    if k % 2:
                        conn.execute("insert into encounters (id, patient_id) values (%s, %s)", (w * 1000 + k,) * 2)
                    conn.execute("update patients set balance = balance + 1 where id = %s", (w,))
                    conn.execute("update patients set balance = balance + 1 where id = 0")
                committed[w] = k

    @guarded
    def cloud_writer():
        with psycopg.connect(p.cloud) as conn:
            started.wait()
            k = 0
            while not stop.is_set():
                k += 1
                with conn.transaction():
                    conn.execute("insert into patients (id, name) values (%s, 'c')", (100_000 + k,))
                    conn.execute("update patients set balance = balance + 1 where id = 99")
                committed[0] = k

    @guarded
    def syncer():
        started.wait()
        runs = 0
        while not stop.is_set():
            sync.sync(p.settings("pc-1"))
            runs += 1
            if runs >= 3:
                synced.set()

    threads = [threading.Thread(target=node_writer, args=(w,)) for w in range(1, WRITERS + 1)]
    background = [threading.Thread(target=cloud_writer), threading.Thread(target=syncer)]
    for t in threads + background:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in background:
        t.join()
    assert not errors, errors
    settle(p)
    p.assert_converged()
    total = sum(committed[1:])
    for dsn in (p.cloud, node):
        assert p.sql(dsn, "select id, balance from patients where id <= %s or id = 99 order by id", (WRITERS,)) == [
            (0, total), *[(w, committed[w]) for w in range(1, WRITERS + 1)], (99, committed[0])]
        assert scalar(p, dsn, "select count(*) from patients") == WRITERS + 2 + total + committed[0]
        assert scalar(p, dsn, "select count(*) from encounters") == sum((k + 1) // 2 for k in committed[1:])
    assert p.conflicts(p.cloud) == []


# -- 4. out-of-order commits -------------------------------------------------------------------------------
def journal_ids(conn: psycopg.Connection) -> list[int]:
    """The journal ids this connection's open transaction wrote."""
    return [r[0] for r in conn.execute("select id from ccsync.journal where txid = pg_current_xact_id()")]


def test_out_of_order_commit_on_the_node_is_pushed(practice):
    p = practice
    node = p.nodes["pc-1"]
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'parent')")
    p.sync("pc-1")
    with psycopg.connect(node) as a, psycopg.connect(node) as b:
        a.execute("insert into patients (id, name) values (10, 'A: writes first, commits last')")
        a.execute("insert into encounters (id, patient_id, summary) values (10, 10, 'A')")
        a.execute("update patients set balance = balance + 1 where id = 1")
        b.execute("insert into patients (id, name) values (20, 'B: writes later, commits first')")
        assert max(journal_ids(a)) < min(journal_ids(b))
        b.commit()
        assert p.push("pc-1")["transactions"] == 1
        assert p.sql(p.cloud, "select id from patients order by id") == [(1,), (20,)]
        a.commit()
    assert p.push("pc-1")["transactions"] == 1
    assert p.sql(p.cloud, "select id, balance from patients order by id") == [(1, 1), (10, 0), (20, 0)]
    assert p.rows(p.cloud, "encounters") == p.rows(node, "encounters")
    p.pull("pc-1")
    p.assert_converged()


def test_out_of_order_commit_on_the_cloud_is_pulled(practice):
    p = practice
    node = p.nodes["pc-1"]
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'parent')")
    p.sync("pc-1")
    with psycopg.connect(p.cloud) as a, psycopg.connect(p.cloud) as b:
        a.execute("insert into patients (id, name) values (10, 'A: writes first, commits last')")
        a.execute("insert into encounters (id, patient_id, summary) values (10, 10, 'A')")
        a.execute("update patients set balance = balance + 1 where id = 1")
        b.execute("insert into patients (id, name) values (20, 'B: writes later, commits first')")
        assert max(journal_ids(a)) < min(journal_ids(b))
        b.commit()
        assert p.pull("pc-1")["transactions"] == 1
        assert p.sql(node, "select id from patients order by id") == [(1,), (20,)]
        a.commit()
    assert p.pull("pc-1")["transactions"] == 1
    assert p.sql(node, "select id, balance from patients order by id") == [(1, 1), (10, 0), (20, 0)]
    p.assert_converged()


# -- 5 and 6. init ---------------------------------------------------------------------------------------------
INVOICES = """
create table invoices (
    id         int primary key,
    patient_id int not null references patients (id),
    amount     numeric(10, 2) not null default 0
);
"""
INIT_TABLES = ("patients", "encounters", "invoices")


def init_practice(make_practice, rows: int) -> Practice:
    """A cloud with three tracked tables, and a node with the same (empty) tables and the `applied` log."""
    from tests.fix_sync import SCHEMA

    p = make_practice(nodes=())
    p.sql(p.cloud, INVOICES)
    p.sql(p.cloud, "select ccsync.track('invoices'::regclass, 'manual')")
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, %s) g", (rows,))
    p.sql(p.cloud, "insert into encounters (id, patient_id, at) select g, g, '2024-01-01' from generate_series(1, %s) g",
          (rows,))
    p.sql(p.cloud, "insert into invoices (id, patient_id) select g, g from generate_series(1, %s) g", (rows,))
    node = p.add_node("pc-1", init=False)
    p.sql(node, SCHEMA + INVOICES)
    log_applied(p, node, INIT_TABLES)
    return p


@pytest.mark.parametrize("copied", [1, 3], ids=["killed after the first table", "killed after the last table"])
def test_interrupted_init_resumes_and_applies_nothing_twice(make_practice, copied):
    p = init_practice(make_practice, rows=30)
    node = p.nodes["pc-1"]
    killed = ccsync("init", *sides_args(p), fault=f"init.table:{copied}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = {r[0].split(".")[1] for r in p.sql(node, "select table_name from ccsync.init_progress")}
    assert len(before) == copied

    def cloud_writes():
        """Per table: 10 increments 3 times, a row inserted in a transaction across tables, one deleted."""
        for _ in range(3):
            tx(p.cloud, "update patients set balance = balance + 1 where id <= 10")
            tx(p.cloud, "update invoices set amount = amount + 1 where id <= 10")
            tx(p.cloud, "update encounters set summary = coalesce(summary, '') || '+' where id <= 10")
        n = scalar(p, p.cloud, "select max(id) + 1 from patients")
        tx(p.cloud, f"insert into patients (id, name) values ({n}, 'new')",
           f"insert into encounters (id, patient_id, at) values ({n}, {n}, '2024-01-02')",
           f"insert into invoices (id, patient_id, amount) values ({n}, {n}, 5)")
        tx(p.cloud, "delete from invoices where id = 30", "delete from encounters where id = 30",
           "delete from patients where id = 30")
        p.sql(p.cloud, "update patients set id = id + 1000 where id = 29")  # 29's children: see below
    per_table = {t: 10 * 3 + 1 + 1 for t in INIT_TABLES}

    # 29 has an encounter and an invoice: the key change needs them gone first
    tx(p.cloud, "delete from invoices where id = 29", "delete from encounters where id = 29")
    p.sql(node, "delete from applied")
    cloud_writes()
    per_table["patients"] += 1
    resumed = json.loads(ok(ccsync("init", "--json", *sides_args(p))).stdout)
    assert resumed["resumed"] is True and resumed["copied_tables"] == len(INIT_TABLES) - copied
    tx(p.cloud, "update patients set balance = balance + 1 where id <= 10",
       "update invoices set amount = amount + 1 where id <= 10")
    p.pull("pc-1")
    p.assert_converged(INIT_TABLES)
    for dsn in (p.cloud, node):
        assert p.sql(dsn, "select sum(balance) from patients where id <= 10") == [(40,)]
        assert p.sql(dsn, "select sum(amount) from invoices where id <= 10") == [(40,)]
    # the changes made between the two inits reach the tables copied before the kill by pull (once), the
    # others by their copy (so not by pull); the changes made after the init reach all of them by pull
    counts = dict(p.sql(node, "select tbl, count(*) from applied group by tbl"))
    after = {"patients": 10, "invoices": 10, "encounters": 0}
    assert counts == {t: n for t in INIT_TABLES
                      if (n := (per_table[t] if t in before else 0) + after[t])}


def test_init_with_cloud_writes_during_the_copy_then_pull_converges_exactly_once(make_practice):
    p = init_practice(make_practice, rows=5000)
    node = p.nodes["pc-1"]
    writes = [0]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer():  # writes continuously on the cloud, before, during and after the copy
        try:
            with psycopg.connect(p.cloud) as conn:
                while not stop.is_set():
                    k = writes[0] + 1
                    with conn.transaction():
                        conn.execute("update patients set balance = balance + 1 where id = %s", (k % 100 + 1,))
                        conn.execute("insert into patients (id, name) values (%s, 'during')", (100_000 + k,))
                    writes[0] = k
        except BaseException as exc:
            errors.append(exc)

    # the copy pauses on a lock (after init took its snapshot); meanwhile the cloud commits more changes
    holder = psycopg.connect(p.cloud)
    holder.execute("lock table invoices in access exclusive mode")
    thread = threading.Thread(target=writer)
    thread.start()
    init = ccsync_bg("init", *sides_args(p))
    try:
        wait_for(lambda: waiting_on_lock(p.cloud, "invoices"), "init to wait for invoices")
        held = writes[0]
        wait_for(lambda: writes[0] >= held + 20 or errors, "writes while init waits")
        holder.execute("update invoices set amount = amount + 1 where id <= 10")
        holder.execute("insert into encounters (id, patient_id, at) values (9999, 1, '2024-01-03')")
        paused_txid = holder.execute("select pg_current_xact_id()::text").fetchone()[0]
        holder.commit()
        _, stderr = init.communicate(timeout=120)
    finally:
        init.kill()
        holder.close()
        stop.set()
        thread.join()
    assert not errors, errors
    assert init.returncode == 0, stderr
    snapshots = dict(p.sql(node, "select table_name, snapshot::text from ccsync.init_progress"))
    assert len(snapshots) == 3
    for snap in snapshots.values():  # the changes made while init waited are not in the copy
        assert scalar(p, p.cloud, "select pg_visible_in_snapshot(%s::xid8, %s::pg_snapshot)", (paused_txid, snap)) \
            is False
    # what the pull must apply: the cloud's changes that the copy does not hold
    expected = {
        t.split(".")[1]: n for t, n in p.sql(
            p.cloud, "select j.table_name, count(*) from ccsync.journal j join (values %s) s(t, snap) "
                     % ", ".join(["(%s, %s::pg_snapshot)"] * len(snapshots))
                     + "on s.t = j.table_name where not pg_visible_in_snapshot(j.txid, s.snap) group by 1",
            [v for item in snapshots.items() for v in item])
    }
    assert expected["patients"] > 0 and expected["invoices"] == 10 and expected["encounters"] == 1
    p.pull("pc-1")
    p.assert_converged(INIT_TABLES)
    assert dict(p.sql(node, "select tbl, count(*) from applied group by tbl")) == expected
    assert p.sql(node, "select sum(balance) from patients") == [(writes[0],)]
    assert p.sql(node, "select count(*) from patients") == [(5000 + writes[0],)]
    assert p.sql(node, "select sum(amount) from invoices") == [(10,)]
