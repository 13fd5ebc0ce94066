"""Capture overhead: the same workloads on an untracked and a tracked database, side by side.

One throwaway PostgreSQL server, two databases built the same way; only `bench_tracked` has ccsync
installed (as node `pc-bench`) with every table tracked. Runs alternate untracked / tracked, so
drift of this shared, noisy machine hits both sides alike; absolute times mean little, the ratios
are the result.

1. pgbench `tpcb-like` (its four tables; pgbench_history gets a bigserial primary key in both
   databases, since ccsync only tracks tables with one): median TPS per side, ratio tracked/untracked
   (target >= 0.85).
2. One `insert ... select ... from generate_series(1, N)` into a realistic table: median seconds per
   side, ratio tracked/untracked (target <= 2.0). Before each run the table is truncated and, on the
   tracked side, so is the journal (as after a push), so every run starts from the same state.
3. One `update pgbench_accounts set abalance = abalance + 1 where aid <= N` (N = 100,000 by default, the
   peers' figure): median seconds per side, ratio tracked/untracked (target <= 2.0). Before each run the
   table is vacuumed and, on the tracked side, the journal truncated.

Usage:
    .venv/bin/python bench/capture.py                      # full run (about 5 minutes)
    .venv/bin/python bench/capture.py --seconds 10         # quick run
    .venv/bin/python bench/capture.py --bindir /usr/lib/postgresql/15/bin --json
    .venv/bin/python bench/capture.py --only update        # the 100,000-row update alone

Progress goes to stderr; the report (or with --json one JSON object) to stdout.

JSON keys:
    server      version, bindir, ccsync_revision, cpus, settings (durability and memory settings
                in force), load_before, load_after (1-minute load average: how busy the machine was)
    pgbench     script, scale, clients, jobs, seconds, runs, aggregate ("median"), untracked_tps,
                tracked_tps (every run, in order), run_ratios (tracked / untracked, round by round),
                untracked, tracked (the medians), ratio (tracked / untracked), target_min, met,
                cpu: untracked_us_per_tx, tracked_us_per_tx (server CPU microseconds per
                transaction, every run), untracked, tracked (the medians), ratio (untracked / tracked)
    insert      table, rows, runs, aggregate ("median"), untracked_seconds, tracked_seconds (every
                run), run_ratios, untracked, tracked (the medians), ratio (tracked / untracked),
                target_max, met,
                cpu: untracked_seconds, tracked_seconds (CPU seconds of the inserting backend, every
                run), untracked, tracked (the medians), ratio (tracked / untracked)
    update      table, rows, runs, and the keys of insert
The cpu figures need Linux's /proc (absent elsewhere); they barely move when other work shares the
machine, so they are the steadier view of the overhead. A section skipped with --only is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import reconciler  # noqa: E402
from reconciler.devtools.pgserver import PgServer  # noqa: E402
from _common import checkpoint, log, parser, pgbench, pgbench_options, server_options, work_folder  # noqa: E402

UNTRACKED, TRACKED = "bench_untracked", "bench_tracked"
PGBENCH_TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
TPS_TARGET_MIN = 0.85
INSERT_TARGET_MAX = 2.0
UPDATE_TARGET_MAX = 2.0
ACCOUNTS_UPDATE = "update pgbench_accounts set abalance = abalance + 1 where aid <= %s"
SHOWN_SETTINGS = ["fsync", "synchronous_commit", "full_page_writes", "wal_level", "wal_sync_method",
                  "shared_buffers", "max_wal_size", "checkpoint_timeout"]

VISIT_TABLE = """
create table visit (
    id          bigint        not null,
    patient_id  integer       not null,
    doctor      text          not null,
    reason      text,
    fee         numeric(10,2) not null,
    seen_at     timestamptz   not null,
    created_at  timestamptz   not null default now(),
    constraint visit_pkey primary key (id)
)
"""
VISIT_INSERT = """
insert into visit (id, patient_id, doctor, reason, fee, seen_at)
select g, g %% 5000, 'dr-' || (g %% 12), 'consultation ' || md5(g::text),
       (g %% 9000) / 100.0 + 20, timestamptz '2025-01-01 08:00+00' + g * interval '1 minute'
  from generate_series(1, %s) as g
"""

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    pgbench_options(p, seconds=30, jobs=None, scale=10, runs="pgbench runs per side, alternating (default 3)")
    p.add_argument("--rows", type=int, default=200_000, help="rows of the bulk insert (default 200000)")
    p.add_argument("--insert-runs", type=int, default=5, help="bulk inserts per side, alternating (default 5)")
    p.add_argument("--update-rows", type=int, default=100_000, help="rows of the update (default 100000)")
    p.add_argument("--update-runs", type=int, default=5, help="updates per side, alternating (default 5)")
    p.add_argument("--only", choices=["pgbench", "insert", "update"], help="run one of the three benchmarks")
    server_options(p, workdir="where the throwaway cluster lives (default: the system temp dir); "
                              "use a real disk, not tmpfs, or fsync costs nothing")
    return p.parse_args(argv)


# -- server and databases ----------------------------------------------------------------------------
def server_facts(server: PgServer) -> dict:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        settings = {name: conn.execute("select current_setting(%s)", (name,)).fetchone()[0]
                    for name in SHOWN_SETTINGS}
        version = conn.execute("show server_version").fetchone()[0]
    return {"version": version, "bindir": str(server.bindir), "ccsync_revision": reconciler.head(),
            "cpus": os.cpu_count(),
            "load_before": round(os.getloadavg()[0], 2), "settings": settings}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[str]:
    # the fields after the command name, which may hold spaces: [0] state, [1] ppid, [11] utime...
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu(pid: int) -> float | None:
    """CPU seconds used so far by one process (a backend), or None where /proc is missing."""
    try:
        f = _proc_stat(pid)
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / _TICK


def server_cpu(server: PgServer) -> float | None:
    """CPU seconds used so far by the whole server, or None where /proc is missing.

    The postmaster's own time, the time of the backends that have exited (the postmaster reaps them,
    so the kernel adds them to its children's time), and that of its live processes (WAL writer,
    checkpointer, backends still running). Unlike wall-clock throughput, this barely moves when other
    work shares the machine.
    """
    try:
        master = int((server.datadir / "postmaster.pid").read_text().split()[0])
        f = _proc_stat(master)
        total = sum(int(x) for x in f[11:15])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    child = _proc_stat(int(entry.name))
                except OSError:
                    continue  # exited meanwhile
                if int(child[1]) == master:
                    total += int(child[11]) + int(child[12])
    except (OSError, ValueError, IndexError):
        return None
    return total / _TICK


def wait_for_backends_to_exit(server: PgServer, db: str) -> None:
    """pgbench has returned, but its backends may still be exiting: wait, so their CPU time is counted."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for _ in range(100):
            if not conn.execute("select count(*) from pg_stat_activity where datname = %s", (db,)).fetchone()[0]:
                break
            time.sleep(0.05)
    time.sleep(0.2)


def prepare_databases(server: PgServer, args: argparse.Namespace) -> None:
    for db in (UNTRACKED, TRACKED):
        dsn = server.create_database(db)
        if args.only != "insert":
            log(f"{db}: pgbench -i -s {args.scale}")
            pgbench(server, "-i", "-s", str(args.scale), "-q", db, quiet=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            if args.only != "insert":
                # ccsync tracks only tables with a primary key; both sides get it so the work is identical
                conn.execute("alter table pgbench_history add column id bigserial primary key")
            if args.only in (None, "insert"):
                conn.execute(VISIT_TABLE)
            conn.execute("vacuum analyze")
    tracked_dsn = server.dsn(TRACKED)
    reconciler.install(tracked_dsn, "pc-bench")
    tables = ([] if args.only == "insert" else PGBENCH_TABLES) + (["visit"] if args.only in (None, "insert") else [])
    reconciler.track(tracked_dsn, tables)
    log(f"{TRACKED}: ccsync installed as pc-bench, tracking {', '.join(tables)}")


# -- 1. pgbench ---------------------------------------------------------------------------------------
def bench_pgbench(server: PgServer, args: argparse.Namespace) -> dict:
    jobs = args.jobs or max(1, min(args.clients, os.cpu_count() or 1))
    tps: dict[str, list[float]] = {UNTRACKED: [], TRACKED: []}
    cpu_us: dict[str, list[float]] = {UNTRACKED: [], TRACKED: []}
    for run in range(1, args.runs + 1):
        for db in (UNTRACKED, TRACKED):
            checkpoint(server)
            log(f"pgbench run {run}/{args.runs} on {db}: {args.clients} clients, {args.seconds} s")
            cpu_before = server_cpu(server)
            out = pgbench(server, "-b", "tpcb-like", "-c", str(args.clients), "-j", str(jobs),
                          "-T", str(args.seconds), "-P", str(max(1, args.seconds // 3)), db)
            wait_for_backends_to_exit(server, db)
            cpu_after = server_cpu(server)
            match = re.search(r"^tps = ([0-9.]+)", out, re.MULTILINE)
            done = re.search(r"^number of transactions actually processed: (\d+)", out, re.MULTILINE)
            if not (match and done):
                raise SystemExit(f"cannot read the TPS in pgbench's output:\n{out}")
            tps[db].append(float(match.group(1)))
            if cpu_before is not None and cpu_after is not None and int(done.group(1)):
                cpu_us[db].append((cpu_after - cpu_before) / int(done.group(1)) * 1e6)
            log(f"  {tps[db][-1]:.1f} TPS" + (f", {cpu_us[db][-1]:.0f} us server CPU per transaction"
                                               if len(cpu_us[db]) == run else ""))
    untracked, tracked = statistics.median(tps[UNTRACKED]), statistics.median(tps[TRACKED])
    ratio = tracked / untracked
    result = {"script": "tpcb-like", "scale": args.scale, "clients": args.clients, "jobs": jobs,
              "seconds": args.seconds, "runs": args.runs, "aggregate": "median",
              "untracked_tps": tps[UNTRACKED], "tracked_tps": tps[TRACKED],
              "run_ratios": [t / u for u, t in zip(tps[UNTRACKED], tps[TRACKED])],
              "untracked": untracked, "tracked": tracked, "ratio": ratio,
              "target_min": TPS_TARGET_MIN, "met": ratio >= TPS_TARGET_MIN}
    if len(cpu_us[UNTRACKED]) == len(cpu_us[TRACKED]) == args.runs:
        cu, ct = statistics.median(cpu_us[UNTRACKED]), statistics.median(cpu_us[TRACKED])
        result["cpu"] = {"untracked_us_per_tx": cpu_us[UNTRACKED], "tracked_us_per_tx": cpu_us[TRACKED],
                         "untracked": cu, "tracked": ct, "ratio": cu / ct}
    return result


# -- 2. bulk insert, 3. bulk update -------------------------------------------------------------------
def bench_insert(server: PgServer, args: argparse.Namespace) -> dict:
    return bench_statement(server, "visit", "truncate visit", VISIT_INSERT, args.rows, args.insert_runs,
                           INSERT_TARGET_MAX, "insert")


def bench_update(server: PgServer, args: argparse.Namespace) -> dict:
    return bench_statement(server, "pgbench_accounts", "vacuum pgbench_accounts", ACCOUNTS_UPDATE, args.update_rows,
                           args.update_runs, UPDATE_TARGET_MAX, "update")


def bench_statement(server: PgServer, table: str, reset: str, statement: str, rows: int, runs: int,
                    target_max: float, what: str) -> dict:
    """One statement touching `rows` rows, timed on both sides in alternation (each run after `reset`)."""
    seconds: dict[str, list[float]] = {UNTRACKED: [], TRACKED: []}
    cpu: dict[str, list[float]] = {UNTRACKED: [], TRACKED: []}
    conns = {db: psycopg.connect(server.dsn(db), autocommit=True) for db in (UNTRACKED, TRACKED)}
    pids = {db: conn.execute("select pg_backend_pid()").fetchone()[0] for db, conn in conns.items()}
    try:
        for run in range(1, runs + 1):
            for db, conn in conns.items():
                conn.execute(reset)
                if db == TRACKED:
                    conn.execute("truncate ccsync.journal")  # as after a push: every run starts alike
                checkpoint(server)
                cpu_before = process_cpu(pids[db])
                started = time.perf_counter()
                conn.execute(statement, (rows,))  # autocommit: the time includes the commit
                seconds[db].append(time.perf_counter() - started)
                cpu_after = process_cpu(pids[db])
                if cpu_before is not None and cpu_after is not None:
                    cpu[db].append(cpu_after - cpu_before)
                log(f"{what} run {run}/{runs} on {db}: {rows} rows in {seconds[db][-1]:.3f} s"
                    + (f" ({cpu[db][-1]:.2f} s backend CPU)" if len(cpu[db]) == run else ""))
        journaled = conns[TRACKED].execute("select count(*) from ccsync.journal").fetchone()[0]
        if journaled != rows:
            raise SystemExit(f"the tracked {what} journaled {journaled} rows, expected {rows}")
    finally:
        for conn in conns.values():
            conn.close()
    untracked, tracked = statistics.median(seconds[UNTRACKED]), statistics.median(seconds[TRACKED])
    ratio = tracked / untracked
    result = {"table": table, "rows": rows, "runs": runs, "aggregate": "median",
              "untracked_seconds": seconds[UNTRACKED], "tracked_seconds": seconds[TRACKED],
              "run_ratios": [t / u for u, t in zip(seconds[UNTRACKED], seconds[TRACKED])],
              "untracked": untracked, "tracked": tracked, "ratio": ratio,
              "target_max": target_max, "met": ratio <= target_max}
    if len(cpu[UNTRACKED]) == len(cpu[TRACKED]) == runs:
        cu, ct = statistics.median(cpu[UNTRACKED]), statistics.median(cpu[TRACKED])
        result["cpu"] = {"untracked_seconds": cpu[UNTRACKED], "tracked_seconds": cpu[TRACKED],
                         "untracked": cu, "tracked": ct, "ratio": ct / cu}
    return result


# -- report -------------------------------------------------------------------------------------------
def report(result: dict) -> str:
    s = result["server"]
    lines = [
        f"ccsync capture overhead: PostgreSQL {s['version']} ({s['bindir']}), {s['cpus']} CPUs",
        "settings: " + ", ".join(f"{k}={v}" for k, v in s["settings"].items()),
        f"tracked side: ccsync schema revision {s['ccsync_revision']}, installed as node pc-bench",
        "runs alternate untracked / tracked on one server; ratio = median tracked / median untracked",
        f"load average (1 min): {s['load_before']} before, {s['load_after']} after"
        + (" (above the CPU count: other work shared the machine, the figures are noisier)"
           if max(s["load_before"], s["load_after"]) > s["cpus"] else ""),
    ]
    if "pgbench" in result:
        b = result["pgbench"]
        lines += [
            "",
            f"pgbench tpcb-like, scale {b['scale']}, {b['clients']} clients, {b['jobs']} threads, "
            f"{b['seconds']} s x {b['runs']} runs per side",
            "  runs untracked         " + "  ".join(f"{t:8.1f}" for t in b["untracked_tps"]),
            "  runs tracked           " + "  ".join(f"{t:8.1f}" for t in b["tracked_tps"]),
            "  run ratios             " + "  ".join(f"{r:8.3f}" for r in b["run_ratios"]),
            f"  TPS untracked (median) {b['untracked']:8.1f}",
            f"  TPS tracked (median)   {b['tracked']:8.1f}",
            f"  ratio tracked/untracked {b['ratio']:7.3f}   target >= {b['target_min']}: "
            + ("met" if b["met"] else "MISSED"),
        ]
        if "cpu" in b:
            c = b["cpu"]
            lines += [
                "  server CPU per transaction (us, median; less sensitive to other load on the machine):",
                f"    untracked {c['untracked']:8.0f}   tracked {c['tracked']:8.0f}   "
                f"ratio untracked/tracked {c['ratio']:6.3f} (the TPS ratio if the server's CPU were the limit)",
            ]
    for what in ("insert", "update"):
        if what not in result:
            continue
        b = result[what]
        lines += [
            "",
            f"insert of {b['rows']:,} rows in one statement into {b['table']} "
            f"(bigint pk, int, 2 text, numeric, 2 timestamptz), {b['runs']} runs per side" if what == "insert" else
            f"update of {b['rows']:,} rows in one statement of {b['table']} (abalance = abalance + 1), "
            f"{b['runs']} runs per side",
            "  runs untracked (s)     " + "  ".join(f"{t:8.3f}" for t in b["untracked_seconds"]),
            "  runs tracked (s)       " + "  ".join(f"{t:8.3f}" for t in b["tracked_seconds"]),
            "  run ratios             " + "  ".join(f"{r:8.3f}" for r in b["run_ratios"]),
            f"  untracked (median, s)  {b['untracked']:8.3f}",
            f"  tracked (median, s)    {b['tracked']:8.3f}",
            f"  ratio tracked/untracked {b['ratio']:7.3f}   target <= {b['target_max']}: "
            + ("met" if b["met"] else "MISSED"),
        ]
        if "cpu" in b:
            c = b["cpu"]
            lines += [
                f"  backend CPU of the {what} (s, median; less sensitive to other load on the machine):",
                f"    untracked {c['untracked']:8.3f}   tracked {c['tracked']:8.3f}   "
                f"ratio tracked/untracked {c['ratio']:6.3f}",
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with work_folder(args) as tmp:
        server = PgServer(tmp / "data", bindir=args.bindir)
        log(f"starting PostgreSQL from {server.bindir} in {tmp}")
        server.init().start()
        try:
            result = {"server": server_facts(server)}
            prepare_databases(server, args)
            if args.only in (None, "pgbench"):
                result["pgbench"] = bench_pgbench(server, args)
            if args.only in (None, "insert"):
                result["insert"] = bench_insert(server, args)
            if args.only in (None, "update"):
                result["update"] = bench_update(server, args)
            result["server"]["load_after"] = round(os.getloadavg()[0], 2)
        finally:
            server.destroy()
    log("done")
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
