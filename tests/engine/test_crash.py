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
from click.testing import CliRunner
from psycopg import sql

import cli
from reconciler import sync
from reconciler.devtools.pgserver import PgServer
from tests.fix_pg import TEST_SETTINGS, Databases
from tests.fix_sync import APP, LOCAL, OWNER, SCHEMA, ClonedPractice, CloudDb, PcDb, Practice, as_role, pc_role

pytestmark = pytest.mark.one_version  # runs subprocesses and servers: once, on the first version

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("patients", "encounters")
CHUNK = 7  # entries per apply transaction in the subprocesses: a window applies in several chunks

# A counting run: every checkpoint passes, and at exit the number of passes per name goes to a JSON file.
COUNTING = """
import atexit, json, os
import reconciler.engine.faults as faults
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
    return ["--local", p.nodes[node], "--cloud", p.pcs[node].cloud]


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
    with psycopg.connect(as_role(dsn, "postgres"), autocommit=True) as conn:  # sees every role's sessions
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
    """A plain trigger on the target's tables: one row per change the reconciler applies (a pull on the node,
    ccsync.apply on; a push on the cloud, whose session names its node in ccsync.origin), except the rows
    `init` copies (a COPY)."""
    p.sql(p.owner(dsn), """
        create table applied (tbl text, op text, origin text, old jsonb, new jsonb);
        grant insert on applied to public;
        create function log_applied() returns trigger language plpgsql as $$
        begin
            if (coalesce(current_setting('ccsync.origin', true), '') <> ''
                or current_setting('ccsync.apply', true) = 'on')
               and current_query() !~* '^[[:space:]]*copy' then
                insert into applied values (tg_table_name, tg_op,
                    coalesce(nullif(current_setting('ccsync.origin', true), ''), 'cloud'),
                    case when tg_op <> 'INSERT' then to_jsonb(old) end,
                    case when tg_op <> 'DELETE' then to_jsonb(new) end);
            end if;
            return null;
        end $$;
    """)
    for t in tables:
        p.sql(p.owner(dsn), sql.SQL("create trigger zz_applied after insert or update or delete on {} for each row "
                                    "execute function log_applied()").format(sql.Identifier(t)))


def applied(p: Practice, dsn: str, *, refreshed: tuple[int, ...] = ()) -> list:
    """What the reconciler applied on a database, as a sorted multiset (apply order may differ by chunking).

    A cloud change to a patient in `refreshed` (one the node changed too) may reach the node by pull or by a
    refresh of the whole row, depending on when the pull ran: for those only the writes that changed
    something are compared (applying an old change again after a newer one does change something).
    """
    rows = p.sql(p.owner(dsn), "select tbl, op, origin, old::text, new::text, coalesce(new, old) ->> 'id' from applied")
    return sorted((r[:5] for r in rows if not (r[0] == "patients" and int(r[5]) in refreshed and r[3] == r[4])),
                  key=repr)


def conflict_records(p: Practice, dsn: str) -> list:
    return p.sql(p.owner(dsn), "select node, table_name, pk::text, kind, columns, status, local_row::text, "
                               "cloud_row::text from ccsync.conflicts order by table_name, pk::text")


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
        "applied on the node": applied(p, node, refreshed=(5, 7)),
        "balances": dict(p.sql(p.cloud, "select id, balance::text from patients")),
        "conflicts on the cloud": conflict_records(p, p.cloud),
        "conflicts on the node": conflict_records(p, node),
        "node journal": scalar(p, node, "select count(*) from ccsync.journal"),
        "rows waiting for a refresh": scalar(p, node, "select count(*) from ccsync.refresh"),
    }


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


# A plan is the commands run one after the other, then writes on both sides, then one sync (which must
# converge), then syncs until quiet. A case runs one of its commands in a subprocess killed at a checkpoint (at
# the first pass, the middle one or the last one of an uninterrupted run, counted, not guessed), the other
# commands and the reruns in-process.
PLANS = {"sync": ("sync",), "pull-then-push": ("pull", "push")}
KILLS = [
    ("sync", "sync", [("push.step", "first")]),  # inside the first cloud transaction
    ("sync", "sync", [("push.conflict", "first")]),  # while recording a conflict
    ("sync", "sync", [("push.applied", "middle")]),  # a chunk applied, its position not yet written
    ("sync", "sync", [("push.committed", "middle")]),  # a chunk committed on the cloud, still in the node journal
    ("sync", "sync", [("pull.step", "middle")]),  # inside a node transaction, in the middle of a window
    ("sync", "sync", [("pull.applied", "last")]),  # the last chunk applied, its position not yet written
    ("sync", "sync", [("pull.committed", "middle")]),  # between two chunks of a window
    # killed three times: each rerun is killed too, at the first pass of another checkpoint
    ("sync", "sync", [("push.committed", "middle"), ("push.step", 1), ("pull.committed", 1)]),
    # a pull while local changes wait (their rows are skipped, and refreshed after the push)
    ("pull-then-push", "pull", [("pull.step", "middle")]),
    ("pull-then-push", "push", [("refresh.applied", "first")]),
]


def case_id(plan, killed, kills) -> str:
    return f"{plan}:{killed}-" + "+".join(f"{checkpoint}-{where}" for checkpoint, where in kills)


def run_plan(p: Practice, plan: str, killed: str, run_killed) -> list[str]:
    """What one sync after the last writes left undone: tables that differ, entries still in the node's
    journal (invariant 5 says: nothing; the syncs that follow must not be needed)."""
    for command in PLANS[plan]:
        if command == killed:
            run_killed(command)
        else:
            getattr(p, command)("pc-1")
    later_writes(p)
    p.sync("pc-1")
    node = p.nodes["pc-1"]
    behind = [t for t in TABLES if p.rows(p.cloud, t) != p.rows(node, t)]
    if pending := scalar(p, node, "select count(*) from ccsync.journal"):
        behind.append(f"{pending} journal entries")
    settle(p)
    p.assert_converged()
    return behind


class Reference:
    """Per server, each plan run uninterrupted: its final state and the checkpoint passes of the command."""

    def __init__(self, databases: Databases, template: Practice, tmp: Path):
        self.databases, self.template, self.tmp = databases, template, tmp
        self.runs: dict[tuple[str, str], tuple[dict, dict]] = {}

    def __call__(self, plan: str, killed: str) -> tuple[dict, dict]:
        if (plan, killed) not in self.runs:
            p = ClonedPractice(self.databases, self.template)
            count_file = self.tmp / f"{uuid.uuid4().hex}.json"
            behind = run_plan(p, plan, killed,
                              lambda command: ok(ccsync(command, *sides_args(p), count_file=count_file)))
            assert behind == [], f"{plan}: one sync after the last writes did not converge"
            self.runs[plan, killed] = (final_state(p), json.loads(count_file.read_text()))
        return self.runs[plan, killed]


@pytest.fixture(scope="module")
def reference(pg, crash_template, tmp_path_factory):
    databases = Databases(pg)
    yield Reference(databases, crash_template, tmp_path_factory.mktemp("passes"))
    databases.drop_all()


def nth(passes: int, where) -> int:
    return where if isinstance(where, int) else {"first": 1, "middle": (passes + 1) // 2, "last": passes}[where]


@pytest.mark.parametrize("plan, killed, kills", [pytest.param(*k, id=case_id(*k)) for k in KILLS])
def test_sigkill_at_a_checkpoint_then_rerun_ends_as_an_uninterrupted_run(
        databases, crash_template, reference, plan, killed, kills):
    expected, passes = reference(plan, killed)

    def killed_at_checkpoints(command):
        for checkpoint, where in kills:
            assert passes.get(checkpoint, 0) > 0, f"{command} never passes {checkpoint}: the case tests nothing"
            fault = f"{checkpoint}:{nth(passes[checkpoint], where)}"
            done = ccsync(command, *sides_args(p), fault=fault)
            assert done.returncode == -signal.SIGKILL, f"{command} not killed at {fault}: {done.stderr}"

    p = ClonedPractice(databases, crash_template)
    behind = run_plan(p, plan, killed, killed_at_checkpoints)
    actual = final_state(p)
    for key in expected:
        assert actual[key] == expected[key], f"{key}: not as in the uninterrupted run"
    # checked last, so that a failure here does not hide the rest
    assert behind == [], f"one sync after the crash and the last writes left undone: {behind}"


def test_the_crash_workload_ends_with_the_expected_values(reference):
    """The reference itself: the counters hold every increment once, the conflict and the merge are there."""
    state, _ = reference("sync", "sync")
    balance = state["balances"]
    assert balance[1] == balance[2] == balance[3] == "9.00"  # 6 increments of 1-10, 2 of the row alone, 1 later
    assert balance[4] == "7.00" and balance[5] == balance[10] == "6.00" and balance[105] == "6.00"
    assert balance[11] == "9.00" and balance[14] == "7.00" and balance[20] == "6.00"
    assert balance[106] == "20.00" and balance[133] == balance[336] == "1.00"
    assert {33, 34, 36, 37, 102, 107, 302} & set(balance) == set()
    patients = {r[0].split(",")[0].strip("("): r[0] for r in state["cloud patients"]}
    assert "node-5" in patients["5"] and "cloud-5" in patients["5"]  # disjoint columns merged
    assert "cloud-7" in patients["7"]  # the cloud's version stays
    [conflict] = state["conflicts on the cloud"]
    assert conflict[:6] == ("pc-1", "public.patients", '{"id": 7}', "update_update", ["phone"], "open")
    assert state["node journal"] == 0 and state["rows waiting for a refresh"] == 0


# -- 2. the cloud stops mid-push -----------------------------------------------------------------------------
@pytest.fixture
def cloud_server(pg, tmp_path):
    """A cloud server of its own, to stop and restart."""
    # commits reach the WAL at once, so an immediate stop loses none (as with the default settings)
    server = PgServer(tmp_path / "cloud", bindir=pg.bindir, settings={**TEST_SETTINGS, "synchronous_commit": "on"})
    server.init().start()
    yield server
    server.destroy()


def test_cloud_stopped_mid_push_fails_cleanly_and_the_rerun_delivers_everything_once(databases, cloud_server):
    p = Practice(Databases(cloud_server), nodes=())
    p.databases = databases  # the nodes live on the shared server
    node = p.add_node("pc-1")
    log_applied(p, p.cloud)
    with psycopg.connect(node, autocommit=True) as conn:
        for t in range(400):  # 20,000 rows in 400 transactions, then 20 increments of rows 1-100
            with conn.transaction():
                conn.execute("insert into patients (id, name) select g, 'p' || g "
                             "from generate_series(%s::int, %s::int) g", (t * 50 + 1, t * 50 + 50))
        for _ in range(20):
            conn.execute("update patients set balance = balance + 1 where id <= 100")
    entries = scalar(p, node, "select count(*) from ccsync.journal")
    assert entries == 22_000

    # a cloud transaction holds the key of a row from the middle of the backlog: the push stops there
    blocker = psycopg.connect(p.cloud)
    blocker.execute("insert into patients (id, name) values (10001, 'in the way')")
    push = ccsync_bg("push", *sides_args(p), chunk=5000)
    try:
        wait_for(lambda: waiting_on_lock(p.cloud), "the push to wait in the middle of the backlog")
        cloud_server.stop("immediate")
        _, stderr = push.communicate(timeout=120)
    finally:
        push.kill()
        blocker.close()
    assert push.returncode != 0
    error = scalar(p, node, "select error from ccsync.history where direction = 'push' order by id desc limit 1")
    assert error and scalar(p, node, "select last_error from ccsync.state") == error

    cloud_server.start()
    arrived = scalar(p, p.cloud, "select count(*) from patients")
    assert 0 < arrived < 20_000  # the outage was in the middle of the backlog
    p.push("pc-1")
    assert p.rows(p.cloud) == p.rows(node)
    assert p.sql(p.cloud, "select count(*), sum(balance) from patients") == [(20_000, 2_000)]
    # every change exactly once, none dropped, none twice (each one's new image is distinct). The `applied` log is a
    # trigger of the cloud's own on patients, so no chain of patients' changes goes as its net change there
    assert p.sql(p.cloud_owner, "select count(*), count(distinct (op, new::text)) from applied") == [(entries, entries)]
    assert scalar(p, node, "select count(*) from ccsync.journal") == 0
    assert scalar(p, node, "select last_error from ccsync.state") is None
    # checked last, so that a failure here does not hide the rest: the user saw one line, no traceback
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in stderr, stderr


# -- 3. concurrent writers -----------------------------------------------------------------------------------
WRITERS, TRANSACTIONS, CLOUD_TRANSACTIONS = 50, 10, 100


def test_fifty_concurrent_writers_while_the_node_syncs_lose_nothing(practice):
    """50 writers on the node (inserts, own and shared counters) and one on the cloud, while sync runs."""
    p = practice
    node = p.nodes["pc-1"]
    # 0: shared by the node's writers; 1-50: one per writer; 99: the cloud's
    p.sql(p.cloud, "insert into patients (id, name, balance) select g, 'counter ' || g, 0 "
                   "from generate_series(0, %s) g union all select 99, 'cloud counter', 0", (WRITERS,))
    p.sync("pc-1")
    errors: list[BaseException] = []
    started = threading.Barrier(WRITERS + 2)
    synced = threading.Event()  # a sync finished after the writers started
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
            for k in range(1, TRANSACTIONS + 1):
                with conn.transaction():
                    conn.execute("insert into patients (id, name) values (%s, 'w')", (w * 1000 + k,))
                    if k % 2:
                        conn.execute("insert into encounters (id, patient_id) values (%s, %s)", (w * 1000 + k,) * 2)
                    conn.execute("update patients set balance = balance + 1 where id = %s", (w,))
                    conn.execute("update patients set balance = balance + 1 where id = 0")
                if k == TRANSACTIONS // 2:  # half written: a sync must run before the rest
                    assert synced.wait(timeout=120), "no sync finished while the writers wrote"

    @guarded
    def cloud_writer():
        with psycopg.connect(p.cloud) as conn:
            started.wait()
            for k in range(1, CLOUD_TRANSACTIONS + 1):
                with conn.transaction():
                    conn.execute("insert into patients (id, name) values (%s, 'c')", (100_000 + k,))
                    conn.execute("update patients set balance = balance + 1 where id = 99")

    @guarded
    def syncer():
        started.wait()
        while not stop.is_set():
            sync.sync(p.settings("pc-1"))
            synced.set()

    writers = [threading.Thread(target=node_writer, args=(w,)) for w in range(1, WRITERS + 1)]
    writers.append(threading.Thread(target=cloud_writer))
    syncing = threading.Thread(target=syncer)
    for t in [*writers, syncing]:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    syncing.join()
    assert not errors, errors
    settle(p)
    p.assert_converged()
    for dsn in (p.cloud, node):
        assert p.sql(dsn, "select id, balance from patients where id <= %s or id = 99 order by id", (WRITERS,)) == [
            (0, WRITERS * TRANSACTIONS), *[(w, TRANSACTIONS) for w in range(1, WRITERS + 1)], (99, CLOUD_TRANSACTIONS)]
        rows = WRITERS + 2 + WRITERS * TRANSACTIONS + CLOUD_TRANSACTIONS  # counters, inserted rows
        assert scalar(p, dsn, "select count(*) from patients") == rows
        assert scalar(p, dsn, "select count(*) from encounters") == WRITERS * ((TRANSACTIONS + 1) // 2)
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
    with psycopg.connect(p.cloud_owner) as a, psycopg.connect(p.cloud_owner) as b:  # (reading their journal ids)
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
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, INVOICES)
    p.sql(p.cloud_owner, "select ccsync.track('invoices'::regclass, 'manual')")
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, %s) g", (rows,))
    p.sql(p.cloud, "insert into encounters (id, patient_id, at) select g, g, '2024-01-01' "
                   "from generate_series(1, %s) g", (rows,))
    p.sql(p.cloud, "insert into invoices (id, patient_id) select g, g from generate_series(1, %s) g", (rows,))
    # a resumed init copies its tables at different snapshots, which holds only where it may skip foreign-key
    # checks while copying (session_replication_role: a superuser, as the README says): the PC's owner is one
    node = p.add_node("pc-1", init=False, local_role="postgres")
    p.sql(node, SCHEMA + INVOICES)
    log_applied(p, node, INIT_TABLES)
    return p


def journal_counts(p: Practice, after_id: int) -> dict[str, int]:
    """Cloud journal entries per table with an id above `after_id`."""
    return dict(p.sql(p.cloud_owner, "select split_part(table_name, '.', 2), count(*) from ccsync.journal where id > %s "
                               "group by 1", (after_id,)))


def last_journal_id(p: Practice) -> int:
    return scalar(p, p.cloud_owner, "select coalesce(max(id), 0) from ccsync.journal")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_interrupted_init_resumes_and_applies_nothing_twice(make_practice, where):
    """Killed after the first, a middle or the last table copied; the cloud changes; init again, then pull."""
    p = init_practice(make_practice, rows=30)
    node = p.nodes["pc-1"]
    tables = scalar(p, p.cloud_owner, "select count(*) from ccsync.tracked")  # ccsync's own replicated tables too
    copied = nth(tables, where)
    killed = ccsync("init", *sides_args(p), fault=f"init.table:{copied}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    copied_before = {r[0].split(".")[1] for r in p.sql(node, "select table_name from ccsync.init_progress")}
    assert len(copied_before) == copied

    mark = last_journal_id(p)
    for _ in range(3):  # between the two inits: increments, a key change, rows across tables in and out
        tx(p.cloud, "update patients set balance = balance + 1 where id <= 10")
        tx(p.cloud, "update invoices set amount = amount + 1 where id <= 10")
        tx(p.cloud, "update encounters set summary = coalesce(summary, '') || '+' where id <= 10")
    tx(p.cloud, "insert into patients (id, name) values (31, 'new')",
       "insert into encounters (id, patient_id, at) values (31, 31, '2024-01-02')",
       "insert into invoices (id, patient_id, amount) values (31, 31, 5)")
    tx(p.cloud, "delete from invoices where id = 30", "delete from encounters where id = 30",
       "delete from patients where id = 30")
    tx(p.cloud, "delete from invoices where id = 29", "delete from encounters where id = 29",
       "update patients set id = 1029 where id = 29")
    between = journal_counts(p, mark)

    rerun = CliRunner().invoke(cli.main, ["init", "--json", *sides_args(p)], catch_exceptions=False)
    assert rerun.exit_code == 0, rerun.output
    resumed = json.loads(rerun.output)
    assert resumed["resumed"] is True and resumed["copied_tables"] == tables - copied

    mark = last_journal_id(p)
    tx(p.cloud, "update patients set balance = balance + 1 where id <= 10",
       "update invoices set amount = amount + 1 where id <= 10")
    after = journal_counts(p, mark)
    p.pull("pc-1")
    p.assert_converged(INIT_TABLES)
    for dsn in (p.cloud, node):
        assert p.sql(dsn, "select sum(balance) from patients where id <= 10") == [(40,)]
        assert p.sql(dsn, "select sum(amount) from invoices where id <= 10") == [(40,)]
    # the changes between the two inits reach the tables copied before the kill by pull, the others by their
    # copy (so not by pull); the changes after the init reach every table by pull: each change exactly once
    expected = {t: (between.get(t, 0) if t in copied_before else 0) + after.get(t, 0) for t in INIT_TABLES}
    assert dict(p.sql(node, "select tbl, count(*) from applied group by tbl")) == {
        t: n for t, n in expected.items() if n}


def test_init_with_cloud_writes_during_the_copy_then_pull_converges_exactly_once(make_practice):
    p = init_practice(make_practice, rows=1000)
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

    # the copy waits on a lock after init took its snapshot; meanwhile the cloud commits more changes
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
    [snap] = {r[0] for r in p.sql(node, "select snapshot::text from ccsync.init_progress")}  # one for all tables
    # the changes made while init waited are not in the copy
    assert scalar(p, p.cloud, "select pg_visible_in_snapshot(%s::xid8, %s::pg_snapshot)", (paused_txid, snap)) is False
    # the pull must apply the cloud's changes that the copy does not hold, each once
    expected = dict(p.sql(p.cloud_owner, "select split_part(table_name, '.', 2), count(*) from ccsync.journal "
                                   "where not pg_visible_in_snapshot(txid, %s::pg_snapshot) group by 1", (snap,)))
    assert expected["patients"] > 40 and expected["invoices"] == 10 and expected["encounters"] == 1
    p.pull("pc-1")
    p.assert_converged(INIT_TABLES)
    assert dict(p.sql(node, "select tbl, count(*) from applied group by tbl")) == expected
    for dsn in (p.cloud, node):
        assert p.sql(dsn, "select count(*), sum(balance) from patients") == [(1000 + writes[0], writes[0])]
        assert p.sql(dsn, "select sum(amount) from invoices") == [(10,)]
