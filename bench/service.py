"""The practice's own speed while `ccsync run` replicates, and the catch-up of a backlog after a restart.

Two throwaway PostgreSQL servers, a cloud and a PC, built as `/work/shared/peers/ccsync.sh` builds them (the
figures it prints for Bucardo are the comparison): pgbench's schema (scale --scale) in database `app` on both,
pgbench_history with an identity key (odd on the PC, even on the cloud), ccsync installed on both with the four
pgbench tables tracked on the cloud and the PC initialized from it (`ccsync init`). On the PC's server a second
database, `untracked`, is built the same way without ccsync: the workload without capture and without the
service. Rounds alternate, so drift of this shared, noisy machine hits every side alike:

1. untracked   pgbench tpcb-like (-c --clients -j --jobs -T --seconds) on `untracked`, the service stopped;
2. backlog     the same on the PC's `app`, the service stopped: the triggers alone (a backlog builds up);
3. catch-up    `ccsync run` started: seconds from its start until the cloud holds every pgbench transaction of
               the backlog (transactions/s; Bucardo: 7.9k/s);
4. live        the same pgbench on `app` with the service running, then seconds from pgbench's end until the
               cloud has converged (Bucardo: 0.34 of the untracked TPS, 129 s).
The service is stopped (SIGTERM) between rounds. "The cloud holds every transaction" is the count of
pgbench_history rows on both sides (a source transaction is applied whole and in commit order, and tpcb-like
inserts its history row last); once measured, every table is compared on both sides (a sum per table), so a
fast wrong answer cannot pass. Everything runs as the servers' superuser, as in the peers' scripts.

Usage:
    .venv/bin/python bench/service.py                      # 3 rounds of 15 s per pgbench (about 6 minutes)
    .venv/bin/python bench/service.py --seconds 5 --runs 1 --scale 1
    .venv/bin/python bench/service.py --bindir /usr/lib/postgresql/15/bin --json

Progress goes to stderr; the report (or with --json one JSON object) to stdout.

JSON keys:
    server    version, bindir, ccsync_revision, cpus, load_before, load_after (1-minute load average)
    pgbench   scale, clients, jobs, seconds, runs, aggregate ("median"),
              untracked_tps, triggers_tps, live_tps (every run, in order), untracked, triggers, live (medians),
              triggers_ratio, live_ratio (median / median untracked), live_target_min, live_met,
              triggers_run_ratios, live_run_ratios (round by round: steadier when the machine's load drifts)
    converge  seconds (every run: pgbench's end until the cloud converged), median, target_max, met
    catchup   transactions, seconds (every run), rates (transactions/s, every run), rate (median),
              target_min (Bucardo's 7.9k/s on the peers' workload), met, ratio_to_untracked_tps
              (median rate / median untracked TPS: how many times faster than the practice wrote it)
    checks    every run's tables compared on both sides: true when all were equal
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import reconciler  # noqa: E402
from reconciler.devtools.pgserver import PgServer  # noqa: E402

TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
LIVE_TARGET_MIN = 0.75
CONVERGE_TARGET_MAX = 1.0
CATCHUP_TARGET_MIN = 7900.0
TIMEOUT = 600.0
FINGERPRINT = ("select (select coalesce(sum(abalance), 0) from pgbench_accounts), "
               "(select coalesce(sum(bbalance), 0) from pgbench_branches), "
               "(select coalesce(sum(tbalance), 0) from pgbench_tellers), "
               "(select count(*) from pgbench_history), (select coalesce(sum(hid), 0) from pgbench_history)")

_start = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _start:5.0f}s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=15, help="duration of each pgbench run (default 15)")
    p.add_argument("--clients", type=int, default=4, help="pgbench clients (default 4)")
    p.add_argument("--jobs", type=int, default=2, help="pgbench threads (default 2)")
    p.add_argument("--scale", type=int, default=5, help="pgbench scale factor (default 5)")
    p.add_argument("--runs", type=int, default=3, help="rounds, each side once per round (default 3)")
    p.add_argument("--bindir", type=Path, default=None,
                   help="PostgreSQL bin directory (default: embedded PostgreSQL 18)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the throwaway clusters live (default: the system temp dir)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    return p.parse_args(argv)


def one(dsn: str, query: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, params).fetchone()


def pgbench(server: PgServer, db: str, *args: str) -> str:
    cmd = [str(server.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", *args, db]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"pgbench failed (exit {done.returncode}): {' '.join(cmd)}")
    return done.stdout


def load(server: PgServer, db: str, scale: int, start: int) -> str:
    dsn = server.create_database(db)
    pgbench(server, db, "-i", "-q", "-s", str(scale))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"alter table pgbench_history add column hid bigint generated by default as identity "
                     f"(start with {start} increment by 2) primary key")
        conn.execute("vacuum analyze")
    return dsn


class Service:
    """`ccsync run` as a subprocess, as a PC runs it."""

    def __init__(self, local: str, cloud: str, logfile: Path):
        self.local, self.cloud, self.logfile = local, cloud, logfile
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.logfile, "a") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run",
                                          "--local", self.local, "--cloud", self.cloud],
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
            self.proc = None


def history_count(dsn: str) -> int:
    return one(dsn, "select count(*) from pgbench_history")[0]


def wait_until_cloud_holds(local: str, cloud: str, service: Service) -> float:
    """Seconds until the cloud has as many pgbench transactions as the (idle) PC, polled every 20 ms."""
    started = time.perf_counter()
    want = history_count(local)
    with psycopg.connect(cloud, autocommit=True) as conn:
        while conn.execute("select count(*) from pgbench_history").fetchone()[0] != want:
            if service.proc is not None and service.proc.poll() is not None:
                raise SystemExit(f"ccsync run stopped (exit {service.proc.returncode}): see {service.logfile}")
            if time.perf_counter() - started > TIMEOUT:
                raise SystemExit(f"the cloud did not converge within {TIMEOUT:.0f} s: see {service.logfile}")
            time.sleep(0.02)
    return time.perf_counter() - started


def same_tables(local: str, cloud: str) -> bool:
    return one(local, FINGERPRINT) == one(cloud, FINGERPRINT)


def checkpoint(*servers: PgServer) -> None:
    for server in servers:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("checkpoint")


def tps(out: str) -> tuple[float, int]:
    rate = re.search(r"^tps = ([0-9.]+)", out, re.MULTILINE)
    done = re.search(r"^number of transactions actually processed: (\d+)", out, re.MULTILINE)
    if not (rate and done):
        raise SystemExit(f"cannot read the TPS in pgbench's output:\n{out}")
    return float(rate.group(1)), int(done.group(1))


def run(args: argparse.Namespace, tmp: Path) -> dict:
    cloud_server = PgServer(tmp / "cloud", bindir=args.bindir)
    pc_server = PgServer(tmp / "pc", bindir=args.bindir)
    for server in (cloud_server, pc_server):
        server.init().start()
    try:
        version = one(pc_server.dsn(), "show server_version")[0]
        result: dict = {"server": {"version": version, "bindir": str(pc_server.bindir),
                                   "ccsync_revision": reconciler.head(), "cpus": os.cpu_count(),
                                   "load_before": round(os.getloadavg()[0], 2)}}
        log(f"loading pgbench scale {args.scale} on the cloud, the PC and the untracked database")
        cloud = load(cloud_server, "app", args.scale, 2)
        local = load(pc_server, "app", args.scale, 1)
        untracked = load(pc_server, "untracked", args.scale, 1)
        reconciler.install(cloud, "cloud")
        reconciler.track(cloud, TABLES, "latest-wins")
        reconciler.install(local, "pc-1")
        subprocess.run([sys.executable, "-c", "import cli; cli.main()", "init", "--local", local, "--cloud", cloud],
                       cwd=ROOT, check=True, capture_output=True)
        service = Service(local, cloud, tmp / "service.log")
        bench = ["-n", "-b", "tpcb-like", "-c", str(args.clients), "-j", str(args.jobs), "-T", str(args.seconds)]
        runs: dict[str, list] = {k: [] for k in ("untracked", "triggers", "live", "converge", "backlog",
                                                 "catchup", "checks")}
        try:
            for round_ in range(1, args.runs + 1):
                checkpoint(cloud_server, pc_server)
                runs["untracked"].append(tps(pgbench(pc_server, "untracked", *bench))[0])
                log(f"round {round_}: untracked {runs['untracked'][-1]:.0f} TPS")

                checkpoint(cloud_server, pc_server)
                before = history_count(local)
                runs["triggers"].append(tps(pgbench(pc_server, "app", *bench))[0])
                runs["backlog"].append(history_count(local) - before)
                service.start()
                runs["catchup"].append(wait_until_cloud_holds(local, cloud, service))
                log(f"round {round_}: triggers only {runs['triggers'][-1]:.0f} TPS; catch-up of "
                    f"{runs['backlog'][-1]} transactions in {runs['catchup'][-1]:.2f} s")

                time.sleep(1.0)  # the service idles, as between two bursts of the practice
                checkpoint(cloud_server, pc_server)
                runs["live"].append(tps(pgbench(pc_server, "app", *bench))[0])
                runs["converge"].append(wait_until_cloud_holds(local, cloud, service))
                log(f"round {round_}: with the service {runs['live'][-1]:.0f} TPS; cloud converged "
                    f"{runs['converge'][-1]:.2f} s after the load")
                service.stop()
                runs["checks"].append(same_tables(local, cloud))
        finally:
            service.stop()
        med = {k: statistics.median(runs[k]) for k in ("untracked", "triggers", "live", "converge")}
        rates = [n / s for n, s in zip(runs["backlog"], runs["catchup"])]
        rate = statistics.median(rates)
        result["pgbench"] = {
            "scale": args.scale, "clients": args.clients, "jobs": args.jobs, "seconds": args.seconds,
            "runs": args.runs, "aggregate": "median",
            "untracked_tps": runs["untracked"], "triggers_tps": runs["triggers"], "live_tps": runs["live"],
            "untracked": med["untracked"], "triggers": med["triggers"], "live": med["live"],
            "triggers_ratio": med["triggers"] / med["untracked"], "live_ratio": med["live"] / med["untracked"],
            "live_target_min": LIVE_TARGET_MIN, "live_met": med["live"] / med["untracked"] >= LIVE_TARGET_MIN,
            "triggers_run_ratios": [t / u for u, t in zip(runs["untracked"], runs["triggers"])],
            "live_run_ratios": [t / u for u, t in zip(runs["untracked"], runs["live"])]}
        result["converge"] = {"seconds": runs["converge"], "median": med["converge"],
                              "target_max": CONVERGE_TARGET_MAX, "met": med["converge"] <= CONVERGE_TARGET_MAX}
        result["catchup"] = {"transactions": runs["backlog"], "seconds": runs["catchup"], "rates": rates,
                             "rate": rate, "target_min": CATCHUP_TARGET_MIN, "met": rate >= CATCHUP_TARGET_MIN,
                             "ratio_to_untracked_tps": rate / med["untracked"]}
        result["checks"] = all(runs["checks"])
        result["server"]["load_after"] = round(os.getloadavg()[0], 2)
        return result
    finally:
        for server in (cloud_server, pc_server):
            server.destroy()


def report(r: dict) -> str:
    s, b, c, k = r["server"], r["pgbench"], r["converge"], r["catchup"]
    row = lambda label, values, fmt: f"  {label:<26}" + "  ".join(fmt.format(v) for v in values)  # noqa: E731
    return "\n".join([
        f"ccsync, the practice's speed with the service: PostgreSQL {s['version']} ({s['bindir']}), {s['cpus']} CPUs",
        f"ccsync schema revision {s['ccsync_revision']}; load average (1 min) {s['load_before']} before, "
        f"{s['load_after']} after",
        f"pgbench tpcb-like -n -c {b['clients']} -j {b['jobs']} -T {b['seconds']}, scale {b['scale']}, "
        f"{b['runs']} rounds alternating; medians",
        row("untracked TPS", b["untracked_tps"], "{:8.1f}"),
        row("triggers only TPS", b["triggers_tps"], "{:8.1f}"),
        row("service running TPS", b["live_tps"], "{:8.1f}"),
        row("round ratios triggers only", b["triggers_run_ratios"], "{:8.3f}"),
        row("round ratios service", b["live_run_ratios"], "{:8.3f}"),
        f"  ratio triggers only / untracked   {b['triggers_ratio']:6.3f}",
        f"  ratio service running / untracked {b['live_ratio']:6.3f}   target >= {b['live_target_min']}: "
        + ("met" if b["live_met"] else "MISSED"),
        row("cloud converged after (s)", c["seconds"], "{:8.2f}"),
        f"  median {c['median']:.2f} s   target <= {c['target_max']} s: " + ("met" if c["met"] else "MISSED"),
        row("backlog (transactions)", k["transactions"], "{:8d}"),
        row("catch-up (s, from start)", k["seconds"], "{:8.2f}"),
        f"  catch-up rate (median) {k['rate']:,.0f} transactions/s "
        f"({k['ratio_to_untracked_tps']:.1f}x the untracked TPS)   target >= {k['target_min']:,.0f}/s: "
        + ("met" if k["met"] else "MISSED"),
        "tables equal on both sides after every round: " + ("yes" if r["checks"] else "NO"),
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ccsync-bench-", dir=args.workdir) as tmp:
        result = run(args, Path(tmp))
    log("done")
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["checks"] else 1


if __name__ == "__main__":
    sys.exit(main())
