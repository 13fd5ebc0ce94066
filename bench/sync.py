"""Sync throughput: ccsync against PostgreSQL's own tools, side by side on the same two servers.

Two throwaway PostgreSQL servers, "cloud" and "node" (wal_level=logical). Every pair of databases
is built the same way from the same table, `visit` (bigint pk, int, 2 text, numeric, 2 timestamptz),
and runs alternate between the two sides, so drift of this shared, noisy machine hits both alike;
absolute times mean little, the ratios are the result.

1. Incremental sync node -> cloud. ccsync: `ccs_node` (node `pc-bench`) pushes to `ccs_cloud`.
   Native: logical replication from a publication in `lr_pub` (node server) to a subscription in
   `lr_sub` (cloud server), created with copy_data = false on an empty table. Three workloads, each
   written on the node side first:
     bulk-insert   --rows rows inserted in one transaction
     bulk-update   the same --rows rows updated (2 columns) in one transaction
     single-row    --txns autocommit transactions of one row each, inserts and updates alternating
   ccsync: rows / seconds of `reconciler.sync.push(settings)`, started once the workload has
   committed: a push drains a backlog. Native, two ways:
     backlog   the subscription is disabled while the workload runs (the node is "offline"); the
               time from ALTER SUBSCRIPTION ... ENABLE until it has applied everything (decoding
               included): the same situation as a push after the workload, so the ratio judged
               against the target (ccsync/native >= 0.5) is ccsync against this one
     online    the subscription is connected and idle; the time from the workload's (last) commit
               until the subscriber has applied it (its replication origin has passed the commit):
               shown for context. With streaming = parallel a big transaction is applied while it is
               still being written, and a stream of small ones keeps pace with the writer, so this
               is only the tail of the work (for the single-row workload, a few milliseconds)
   The subscription is disabled while ccsync is measured, so its WAL sender does not decode
   ccsync's WAL on the same two CPUs.
2. Initial sync of --init-rows rows. ccsync: `reconciler.sync.init` (forced, so every run copies
   again) from `init_cloud` to `init_node` (node `pc-init`). Native: a binary COPY pipe,
   `COPY (SELECT ...) TO STDOUT (FORMAT binary)` on `init_cloud` streamed by psycopg into
   `COPY visit FROM STDIN (FORMAT binary)` on `copy_node`, in 256 kB writes as ccsync does. Both targets are emptied (untimed)
   before a run. Rates in rows/s, ratio ccsync/COPY (target >= 0.8).

Both servers run with PgServer's settings (durable: fsync on) plus wal_retrieve_retry_interval = 100ms,
so that before PostgreSQL 16 a re-enabled subscription does not wait 5 s for its apply worker.
Every workload and every copy starts after a VACUUM of every database of its section (so autovacuum
of the previous run's rows does not land in it) and a CHECKPOINT on both servers (so full-page writes
cost every side alike).
At the end each pair is checked row for row (md5 of the ordered rows), so a fast wrong answer
cannot pass.

Usage:
    .venv/bin/python bench/sync.py                       # full run (20 to 35 minutes on 2 CPUs)
    .venv/bin/python bench/sync.py --rows 20000 --txns 1000 --init-rows 100000 --runs 1 --init-runs 1
    .venv/bin/python bench/sync.py --bindir /usr/lib/postgresql/15/bin --json

Progress goes to stderr; the report (or with --json one JSON object) to stdout.

JSON keys:
    server        cloud, node: version, bindir, cpus, settings (durability and memory settings)
    subscription  streaming, binary, synchronous_commit (as created: the server's defaults)
    incremental   table, runs, aggregate ("median"), target_min, workloads: a list of
                  {name, describe, rows, transactions, ccsync_seconds, native_seconds,
                  backlog_seconds (every run, in order), ccsync, native, backlog (the medians, seconds), ccsync_rate,
                  native_rate, backlog_rate (rows/s), ratio (ccsync_rate / backlog_rate, judged
                  against target_min), online_ratio (ccsync_rate / native_rate), met}
    init          table, rows, runs, aggregate ("median"), ccsync_seconds, copy_seconds (every run),
                  ccsync, copy (the medians), ccsync_rate, copy_rate (rows/s), ratio
                  (ccsync_rate / copy_rate), target_min, met
    checks        every pair compared row for row: {pair: true}
A section skipped with --only is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))  # capture.py, next to this file
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import reconciler  # noqa: E402
from capture import VISIT_TABLE, server_facts  # noqa: E402
from _common import checkpoint, log, parser, server_options, work_folder  # noqa: E402
from reconciler.engine.journal import relay  # noqa: E402
from reconciler.config import Settings  # noqa: E402
from reconciler.devtools.pgserver import PgServer  # noqa: E402

INCREMENTAL_TARGET_MIN = 0.5
INIT_TARGET_MIN = 0.8
PUBLICATION = SUBSCRIPTION = "bench_sync"
POLL = 0.005  # seconds between two looks at the subscriber: short next to any lag measured here
TIMEOUT = 1800.0
# before PostgreSQL 16 the launcher starts an apply worker at most every wal_retrieve_retry_interval
# (5 s by default): the backlog measure would count that wait after ENABLE
SERVER_SETTINGS = {"wal_retrieve_retry_interval": "100"}

ROWS_SELECT = """
select g, g %% 5000, 'dr-' || (g %% 12), 'consultation ' || md5(g::text),
       (g %% 9000) / 100.0 + 20, timestamptz '2025-01-01 08:00+00' + g * interval '1 minute'
  from generate_series(%s::bigint, %s::bigint) as g
"""
BULK_INSERT = "insert into visit (id, patient_id, doctor, reason, fee, seen_at)" + ROWS_SELECT
BULK_UPDATE = "update visit set fee = fee + 1, reason = %s where id between 1 and %s"
ROW_INSERT = """
insert into visit (id, patient_id, doctor, reason, fee, seen_at)
values (%(id)s, %(id)s %% 5000, 'dr-7', 'walk-in', 25.00, now())
returning pg_current_wal_insert_lsn()::text
"""
ROW_UPDATE = "update visit set fee = fee + 1, reason = %(reason)s where id = %(id)s returning pg_current_wal_insert_lsn()::text"
ROWS_MD5 = "select count(*), md5(coalesce(string_agg(v::text, ',' order by id), '')) from visit v"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--rows", type=int, default=200_000,
                   help="rows of the one-transaction workloads (default 200000)")
    p.add_argument("--txns", type=int, default=10_000,
                   help="single-row transactions of the single-row workload (default 10000)")
    p.add_argument("--init-rows", type=int, default=1_000_000, help="rows of the initial sync (default 1000000)")
    p.add_argument("--runs", type=int, default=3, help="runs per side of each incremental workload (default 3)")
    p.add_argument("--init-runs", type=int, default=3, help="runs per side of the initial sync (default 3)")
    p.add_argument("--only", choices=["incremental", "init"], help="run one of the two benchmarks")
    server_options(p, workdir="where the throwaway clusters live (default: the system temp dir); "
                              "use a real disk, not tmpfs, or fsync costs nothing")
    args = p.parse_args(argv)
    if args.txns < 2 or args.rows < 1 or args.init_rows < 1 or args.runs < 1 or args.init_runs < 1:
        p.error("--rows, --init-rows, --runs, --init-runs must be at least 1 and --txns at least 2")
    return args


# -- helpers ------------------------------------------------------------------------------------------
def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def execute(dsn: str, query, params=None):
    with connect(dsn) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def vacuum(*dsns: str, tables: tuple[str, ...] = ("visit", "ccsync.journal")) -> None:
    """Vacuum (all of a section's databases, not only the next run's, or autovacuum of the rows the
    previous run wrote lands in the middle of the next one)."""
    for dsn in dsns:
        with connect(dsn) as conn:
            for table in tables:
                if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0]:
                    conn.execute(sql.SQL("vacuum analyze {}").format(sql.Identifier(*table.split("."))))


def wait_for(what: str, check, timeout: float = TIMEOUT, poll: float = POLL) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- the native side: a subscription ------------------------------------------------------------------
class Subscription:
    """The logical replication pair: publication on the node server, subscription on the cloud server."""

    def __init__(self, pub_server: PgServer, pub_db: str, sub_server: PgServer, sub_db: str):
        self.pub_dsn, self.sub_dsn = pub_server.dsn(pub_db), sub_server.dsn(sub_db)
        self.conninfo = f"host=127.0.0.1 port={pub_server.port} user=postgres dbname={pub_db}"
        self.pub = connect(self.pub_dsn)
        self.sub = connect(self.sub_dsn)
        self.origin: str | None = None

    def create(self) -> dict:
        self.pub.execute(sql.SQL("create publication {} for table visit").format(sql.Identifier(PUBLICATION)))
        self.sub.execute(sql.SQL("create subscription {} connection {} publication {} with (copy_data = false)").format(
            sql.Identifier(SUBSCRIPTION), sql.Literal(self.conninfo), sql.Identifier(PUBLICATION)))
        oid, stream, binary, commit = self.sub.execute(
            "select oid, substream::text, subbinary, subsynccommit from pg_subscription where subname = %s",
            (SUBSCRIPTION,),
        ).fetchone()
        self.origin = f"pg_{oid}"
        self.wait_idle()
        streaming = {"f": "off", "false": "off", "t": "on", "true": "on", "p": "parallel"}.get(stream, stream)
        return {"streaming": streaming, "binary": binary, "synchronous_commit": commit}

    def close(self) -> None:
        self.pub.close()
        self.sub.close()

    def _worker_running(self) -> bool:
        return self.sub.execute(
            "select exists (select 1 from pg_stat_subscription where subname = %s and pid is not null)",
            (SUBSCRIPTION,),
        ).fetchone()[0]

    def _slot_active(self) -> bool:
        row = self.pub.execute("select active from pg_replication_slots where slot_name = %s", (SUBSCRIPTION,)).fetchone()
        return bool(row and row[0])

    def enable(self) -> None:
        self.sub.execute(sql.SQL("alter subscription {} enable").format(sql.Identifier(SUBSCRIPTION)))

    def disable(self) -> None:
        """Disable, and wait until the apply worker and the WAL sender are gone."""
        self.sub.execute(sql.SQL("alter subscription {} disable").format(sql.Identifier(SUBSCRIPTION)))
        wait_for("the subscription to stop", lambda: not self._worker_running() and not self._slot_active(), poll=0.05)

    def wait_idle(self) -> None:
        """Connected, and its WAL sender has read all the WAL written so far: nothing left to do."""
        wait_for("the subscription to connect", lambda: self._worker_running() and self._slot_active(), poll=0.05)
        end = self.pub.execute("select pg_current_wal_flush_lsn()::text").fetchone()[0]
        wait_for("the subscription to catch up", lambda: self.pub.execute(
            "select coalesce(bool_or(sent_lsn >= %s::pg_lsn), false) from pg_stat_replication "
            "where application_name = %s",
            (end, SUBSCRIPTION),
        ).fetchone()[0], poll=0.05)
        time.sleep(0.5)

    def applied_past(self, lsn: str) -> bool:
        """The subscriber has applied a transaction that committed after `lsn` (a position taken before the commit)."""
        row = self.sub.execute(
            "select remote_lsn > %s::pg_lsn from pg_replication_origin_status where external_id = %s",
            (lsn, self.origin),
        ).fetchone()
        return bool(row and row[0])


# -- workloads ----------------------------------------------------------------------------------------
BIG = 1_000_000_000  # single-row inserts take their keys far from the bulk ones


class Workload:
    """One workload, run identically on both sides; returns a WAL position taken just before its last commit."""

    def __init__(self, name: str, rows: int, transactions: int, describe: str, *, updatable: int):
        self.name, self.rows, self.transactions, self.describe = name, rows, transactions, describe
        self.updatable = updatable  # rows 1..updatable exist once the first bulk insert has run
        self.next_id: dict[str, int] = {}  # per database: the next free primary key

    def run(self, conn: psycopg.Connection, db: str, round_: int) -> str:
        first = self.next_id.setdefault(db, 1)
        if self.name == "bulk-insert":
            with conn.transaction():
                conn.execute(BULK_INSERT, (first, first + self.rows - 1))
                lsn = conn.execute("select pg_current_wal_insert_lsn()::text").fetchone()[0]
            self.next_id[db] = first + self.rows
        elif self.name == "bulk-update":
            with conn.transaction():
                conn.execute(BULK_UPDATE, (f"follow-up {round_}", self.rows))
                lsn = conn.execute("select pg_current_wal_insert_lsn()::text").fetchone()[0]
        else:  # single-row: autocommit, inserts of new keys and updates of existing rows, alternating
            for i in range(self.transactions):
                if i % 2 == 0:
                    lsn = conn.execute(ROW_INSERT, {"id": BIG + first + i}).fetchone()[0]
                else:
                    key = 1 + (i * 7919) % self.updatable
                    lsn = conn.execute(ROW_UPDATE, {"id": key, "reason": f"call {round_}.{i}"}).fetchone()[0]
            self.next_id[db] = first + self.transactions
        return lsn


def workloads(args: argparse.Namespace) -> list[Workload]:
    """In this order in every round: the bulk insert creates the rows the other two update."""
    return [
        Workload("bulk-insert", args.rows, 1, f"{args.rows:,} rows inserted in one transaction",
                 updatable=args.rows),
        Workload("bulk-update", args.rows, 1, f"{args.rows:,} rows updated (2 columns) in one transaction",
                 updatable=args.rows),
        Workload("single-row", args.txns, args.txns,
                 f"{args.txns:,} autocommit transactions of one row (inserts and updates alternating)",
                 updatable=args.rows),
    ]


# -- 1. incremental -----------------------------------------------------------------------------------
def prepare_incremental(cloud: PgServer, node: PgServer) -> tuple[Settings, Subscription, dict]:
    ccs_cloud, ccs_node = cloud.create_database("ccs_cloud"), node.create_database("ccs_node")
    reconciler.install(ccs_cloud, "cloud")
    execute(ccs_cloud, VISIT_TABLE)
    reconciler.track(ccs_cloud, ["visit"])
    reconciler.install(ccs_node, "pc-bench")
    execute(ccs_node, VISIT_TABLE)  # the same definition as every other copy of the table
    settings = Settings(local=ccs_node, cloud=ccs_cloud)
    reconciler.sync.init(settings)
    log("ccs_node -> ccs_cloud: ccsync installed, visit tracked, node initialized")

    for server, db in ((node, "lr_pub"), (cloud, "lr_sub")):
        execute(server.create_database(db), VISIT_TABLE)
    sub = Subscription(node, "lr_pub", cloud, "lr_sub")
    facts = sub.create()
    log(f"lr_pub -> lr_sub: subscription connected ({', '.join(f'{k}={v}' for k, v in facts.items())})")
    return settings, sub, facts


def bench_incremental(cloud: PgServer, node: PgServer, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    settings, sub, facts = prepare_incremental(cloud, node)
    ccs = connect(settings.local)
    native_pairs = (sub.pub_dsn, sub.sub_dsn)
    ccsync_pairs = (settings.local, settings.cloud)
    everything = native_pairs + ccsync_pairs
    results = []
    try:
        work = workloads(args)
        times = {w.name: {"ccsync": [], "native": [], "backlog": []} for w in work}
        for round_ in range(args.runs):
            for w in work:
                tag = f"round {round_ + 1}/{args.runs}, {w.name}"

                # native, online: connected and idle, then the workload; lag from its commit
                vacuum(*everything)
                checkpoint(cloud, node)
                sub.wait_idle()
                written = time.perf_counter()
                lsn = w.run(sub.pub, "lr_pub", round_)
                started = time.perf_counter()
                log(f"{tag}: written on lr_pub in {started - written:.3f} s")
                wait_for("the subscriber to apply the workload", lambda: sub.applied_past(lsn))
                times[w.name]["native"].append(time.perf_counter() - started)
                log(f"{tag}: native online  {times[w.name]['native'][-1]:8.3f} s")

                # native, backlog: written while the subscription is off, then enabled
                vacuum(*everything)
                checkpoint(cloud, node)
                sub.disable()
                lsn = w.run(sub.pub, "lr_pub", round_)
                started = time.perf_counter()
                sub.enable()
                wait_for("the subscriber to apply the backlog", lambda: sub.applied_past(lsn))
                times[w.name]["backlog"].append(time.perf_counter() - started)
                log(f"{tag}: native backlog {times[w.name]['backlog'][-1]:8.3f} s")
                sub.disable()  # quiet while ccsync is measured

                # ccsync: the workload on the node, committed, then one push
                vacuum(*everything)
                checkpoint(cloud, node)
                written = time.perf_counter()
                w.run(ccs, "ccs_node", round_)
                started = time.perf_counter()
                log(f"{tag}: written on ccs_node in {started - written:.3f} s")
                pushed = reconciler.sync.push(settings)
                times[w.name]["ccsync"].append(time.perf_counter() - started)
                if pushed["changes"] != w.rows:
                    raise SystemExit(f"{w.name}: ccsync pushed {pushed['changes']} changes, expected {w.rows}")
                log(f"{tag}: ccsync push     {times[w.name]['ccsync'][-1]:8.3f} s "
                    f"({pushed['transactions']} transactions)")
                sub.enable()
        for w in work:
            t = times[w.name]
            ccsync, native, backlog = median(t["ccsync"]), median(t["native"]), median(t["backlog"])
            ratio = backlog / ccsync
            results.append({
                "name": w.name, "describe": w.describe, "rows": w.rows, "transactions": w.transactions,
                "ccsync_seconds": t["ccsync"], "native_seconds": t["native"], "backlog_seconds": t["backlog"],
                "ccsync": ccsync, "native": native, "backlog": backlog,
                "ccsync_rate": w.rows / ccsync, "native_rate": w.rows / native, "backlog_rate": w.rows / backlog,
                "ratio": ratio, "online_ratio": native / ccsync, "met": ratio >= INCREMENTAL_TARGET_MIN,
            })
        sub.wait_idle()
        checks = {"ccs_node = ccs_cloud": same_rows(*ccsync_pairs), "lr_pub = lr_sub": same_rows(*native_pairs)}
    finally:
        ccs.close()
        sub.close()
    section = {"table": "visit", "runs": args.runs, "aggregate": "median", "target_min": INCREMENTAL_TARGET_MIN,
               "workloads": results}
    return section, facts, checks


def same_rows(a: str, b: str) -> bool:
    left, right = execute(a, ROWS_MD5)[0], execute(b, ROWS_MD5)[0]
    if left != right:
        log(f"MISMATCH: {a} has {left[0]} rows ({left[1]}), {b} has {right[0]} rows ({right[1]})")
    return left == right


# -- 2. initial sync ----------------------------------------------------------------------------------
def prepare_init(cloud: PgServer, node: PgServer, args: argparse.Namespace) -> tuple[str, str, Settings]:
    source = cloud.create_database("init_cloud")
    reconciler.install(source, "cloud")
    log(f"init_cloud: {args.init_rows:,} rows into visit")
    with connect(source) as conn:
        conn.execute(VISIT_TABLE)
        conn.execute(BULK_INSERT, (1, args.init_rows))
        conn.execute("vacuum (freeze, analyze) visit")  # hint bits set: no run pays for them
    reconciler.track(source, ["visit"])  # after the load, so the cloud's journal stays empty
    target = node.create_database("init_node")
    reconciler.install(target, "pc-init")
    execute(target, VISIT_TABLE)
    execute(node.create_database("copy_node"), VISIT_TABLE)
    return source, node.dsn("copy_node"), Settings(local=target, cloud=source)


def copy_pipe(source: str, target: str) -> int:
    """The baseline: binary COPY out of the cloud, streamed into the node as it comes, with ccsync's relay
    (rows forwarded in 256 kB writes: a write per row would cost the Python relay a million steps and
    flatter ccsync, which relays that way too)."""
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        src.execute("set transaction isolation level repeatable read, read only")
        relay(src, "copy (select id, patient_id, doctor, reason, fee, seen_at, created_at from visit) "
                   "to stdout (format binary)", None,
              dst, "copy visit (id, patient_id, doctor, reason, fee, seen_at, created_at) from stdin (format binary)")
        rows = dst.execute("select count(*) from visit").fetchone()[0]  # inside the copy's transaction
        dst.commit()
    return rows


def bench_init(cloud: PgServer, node: PgServer, args: argparse.Namespace) -> tuple[dict, dict]:
    source, copy_target, settings = prepare_init(cloud, node, args)
    seconds: dict[str, list[float]] = {"ccsync": [], "copy": []}
    for run in range(1, args.init_runs + 1):
        execute(copy_target, "truncate visit")
        vacuum(copy_target, settings.local)
        checkpoint(cloud, node)
        started = time.perf_counter()
        rows = copy_pipe(source, copy_target)
        seconds["copy"].append(time.perf_counter() - started)
        if rows != args.init_rows:
            raise SystemExit(f"the COPY pipe copied {rows} rows, expected {args.init_rows}")
        log(f"init run {run}/{args.init_runs}: COPY pipe   {seconds['copy'][-1]:8.3f} s")

        with connect(settings.local) as conn:  # emptied as a replica would be: not journaled
            with conn.transaction():
                conn.execute("select set_config('ccsync.origin', 'cloud', true)")
                conn.execute("truncate visit")
        vacuum(copy_target, settings.local)
        checkpoint(cloud, node)
        started = time.perf_counter()
        done = reconciler.sync.init(settings, force=True)
        seconds["ccsync"].append(time.perf_counter() - started)
        if done["rows"] != args.init_rows:
            raise SystemExit(f"ccsync init copied {done['rows']} rows, expected {args.init_rows}")
        log(f"init run {run}/{args.init_runs}: ccsync init {seconds['ccsync'][-1]:8.3f} s")
    ccsync, copy = median(seconds["ccsync"]), median(seconds["copy"])
    ratio = copy / ccsync
    checks = {"init_cloud = init_node": same_rows(source, settings.local),
              "init_cloud = copy_node": same_rows(source, copy_target)}
    return {"table": "visit", "rows": args.init_rows, "runs": args.init_runs, "aggregate": "median",
            "ccsync_seconds": seconds["ccsync"], "copy_seconds": seconds["copy"], "ccsync": ccsync, "copy": copy,
            "ccsync_rate": args.init_rows / ccsync, "copy_rate": args.init_rows / copy, "ratio": ratio,
            "target_min": INIT_TARGET_MIN, "met": ratio >= INIT_TARGET_MIN}, checks


# -- report -------------------------------------------------------------------------------------------
def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(result: dict) -> str:
    s = result["server"]["cloud"]
    lines = [
        f"ccsync sync throughput: PostgreSQL {s['version']} ({s['bindir']}), {s['cpus']} CPUs, "
        "two servers (cloud, node) on this machine",
        "settings: " + ", ".join(f"{k}={v}" for k, v in s["settings"].items()),
        "runs alternate between the sides; figures are medians; rates in rows/s",
    ]
    if "incremental" in result:
        b, sub = result["incremental"], result["subscription"]
        lines += [
            "",
            f"incremental sync node -> cloud, table visit, {b['runs']} run(s) per side",
            "  ccsync: reconciler.sync.push after the workload committed",
            "  native: logical replication (subscription " + ", ".join(f"{k}={v}" for k, v in sub.items()) + ")",
            "    backlog: disabled during the workload, time from ENABLE until applied (the target's measure)",
            "    online:  connected and idle, time from the workload's commit until applied (context)",
        ]
        for w in b["workloads"]:
            lines += [
                "",
                f"  {w['name']}: {w['describe']}",
                "    runs ccsync (s)         " + "  ".join(f"{t:8.3f}" for t in w["ccsync_seconds"]),
                "    runs native online (s)  " + "  ".join(f"{t:8.3f}" for t in w["native_seconds"]),
                "    runs native backlog (s) " + "  ".join(f"{t:8.3f}" for t in w["backlog_seconds"]),
                f"    ccsync push             {w['ccsync_rate']:12,.0f} rows/s",
                f"    native online           {w['native_rate']:12,.0f} rows/s",
                f"    native backlog          {w['backlog_rate']:12,.0f} rows/s",
                f"    ratio ccsync/backlog    {w['ratio']:12.3f}   target >= {b['target_min']}: {verdict(w['met'])}",
                f"    ratio ccsync/online     {w['online_ratio']:12.3f}   (context: see the docstring)",
            ]
            if w["native"] < 0.1 * w["backlog"]:
                lines.append("    note: the subscriber kept pace with the writer, so the online lag is only the tail "
                             "of the workload")
    if "init" in result:
        b = result["init"]
        lines += [
            "",
            f"initial sync of {b['rows']:,} rows, table visit (bigint pk, int, 2 text, numeric, 2 timestamptz), "
            f"{b['runs']} run(s) per side",
            "  runs COPY pipe (s)      " + "  ".join(f"{t:8.3f}" for t in b["copy_seconds"]),
            "  runs ccsync init (s)    " + "  ".join(f"{t:8.3f}" for t in b["ccsync_seconds"]),
            f"  binary COPY pipe        {b['copy_rate']:12,.0f} rows/s",
            f"  ccsync init             {b['ccsync_rate']:12,.0f} rows/s",
            f"  ratio ccsync/COPY       {b['ratio']:12.3f}   target >= {b['target_min']}: {verdict(b['met'])}",
        ]
    lines += ["", "checks: " + ", ".join(f"{k}: {'same rows' if v else 'DIFFERENT'}"
                                          for k, v in result["checks"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with work_folder(args) as tmp:
        cloud = PgServer(tmp / "cloud", bindir=args.bindir, settings=SERVER_SETTINGS)
        node = PgServer(tmp / "node", bindir=args.bindir, settings=SERVER_SETTINGS)
        log(f"starting two PostgreSQL servers (cloud, node) from {cloud.bindir} in {tmp}")
        try:
            cloud.init().start()
            node.init().start()
            result: dict = {"server": {"cloud": server_facts(cloud), "node": server_facts(node)}, "checks": {}}
            if args.only != "init":
                result["incremental"], result["subscription"], checks = bench_incremental(cloud, node, args)
                result["checks"].update(checks)
            if args.only != "incremental":
                result["init"], checks = bench_init(cloud, node, args)
                result["checks"].update(checks)
        finally:
            cloud.destroy()
            node.destroy()
    log("done")
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
