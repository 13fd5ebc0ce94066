"""Replication delay with `ccsync run` going: how long until a commit on one side is visible on the other.

Two throwaway servers (a cloud and a PC), one tracked table, the service running as a subprocess. 1,000
single-row commits on the cloud, spaced out, then 1,000 on the PC; a poller on the other side notes when
each row appears. Prints the median and 95th percentile delay each way (target: median under 1 s).

Usage:
    .venv/bin/python bench/latency.py                 # 1,000 commits each way
    .venv/bin/python bench/latency.py --commits 200 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import reconciler  # noqa: E402
from reconciler import sync  # noqa: E402
from reconciler.config import Settings  # noqa: E402
from reconciler.devtools.pgserver import PgServer  # noqa: E402

TABLE = "create table pings (id bigint primary key, origin text not null, payload text)"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def measure(writer_dsn: str, reader_dsn: str, origin: str, commits: int, gap: float, start_id: int) -> list[float]:
    committed: dict[int, float] = {}
    seen: dict[int, float] = {}
    done = threading.Event()

    def poll():
        with psycopg.connect(reader_dsn, autocommit=True) as conn:
            last = start_id - 1
            while not done.is_set() or len(seen) < commits:
                rows = conn.execute("select id from pings where id > %s order by id", (last,)).fetchall()
                now = time.monotonic()
                for (i,) in rows:
                    seen.setdefault(i, now)
                    last = max(last, i)
                if len(seen) >= commits:
                    return
                time.sleep(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    with psycopg.connect(writer_dsn, autocommit=True) as conn:
        for k in range(commits):
            i = start_id + k
            conn.execute("insert into pings values (%s, %s, 'x')", (i, origin))
            committed[i] = time.monotonic()
            time.sleep(gap)
            if k % 100 == 99:
                log(f"  {origin}: {k + 1}/{commits} commits")
    done.set()
    poller.join(timeout=120)
    slow = [(i - start_id, round(seen[i] - committed[i], 2)) for i in committed if i in seen and seen[i] - committed[i] > 2]
    if slow:
        log(f"  slow: {slow[:10]}")
    return [seen[i] - committed[i] for i in committed if i in seen]


def summary(delays: list[float]) -> dict:
    ordered = sorted(delays)
    return {"count": len(delays), "median_s": round(statistics.median(ordered), 4),
            "p95_s": round(ordered[int(len(ordered) * 0.95) - 1], 4), "max_s": round(ordered[-1], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between two commits")
    parser.add_argument("--bindir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ccsync-latency-"))
    cloud_srv = PgServer(tmp / "cloud", bindir=args.bindir).init().start()
    pc_srv = PgServer(tmp / "pc", bindir=args.bindir).init().start()
    service = None
    try:
        cloud, pc = cloud_srv.create_database("practice"), pc_srv.create_database("practice")
        reconciler.install(cloud, "cloud")
        with psycopg.connect(cloud, autocommit=True) as conn:
            conn.execute(TABLE)
        reconciler.track(cloud, ["pings"])
        reconciler.install(pc, "pc-bench")
        settings = Settings(local=pc, cloud=cloud)
        sync.init(settings)
        env = {**os.environ, "CCSYNC_LOCAL_DSN": pc, "CCSYNC_CLOUD_DSN": cloud}
        service = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run"], env=env,
                                   cwd=Path(__file__).resolve().parent.parent,
                                   stdout=subprocess.DEVNULL, stderr=open(tmp / "service.log", "w"))
        deadline = time.monotonic() + 60
        while reconciler.status.current(settings)["mode"] != "online" or not reconciler.status.current(settings)["service"]:
            if time.monotonic() > deadline:
                raise SystemExit("the service did not come online")
            time.sleep(0.2)
        log(f"cloud -> PC: {args.commits} single-row commits, {args.gap * 1000:.0f} ms apart")
        down = summary(measure(cloud, pc, "cloud", args.commits, args.gap, 1))
        log(f"PC -> cloud: {args.commits} single-row commits, {args.gap * 1000:.0f} ms apart")
        up = summary(measure(pc, cloud, "pc", args.commits, args.gap, 10_000_000))
        result = {"commits": args.commits, "gap_s": args.gap, "cloud_to_pc": down, "pc_to_cloud": up,
                  "target_median_s": 1.0, "met": down["median_s"] < 1.0 and up["median_s"] < 1.0}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print("Replication delay with `ccsync run` (commit on one side -> row visible on the other)")
            for name, r in (("cloud -> PC", down), ("PC -> cloud", up)):
                print(f"  {name}: median {r['median_s'] * 1000:.0f} ms, p95 {r['p95_s'] * 1000:.0f} ms, "
                      f"max {r['max_s'] * 1000:.0f} ms over {r['count']} commits")
            print(f"  target: median under 1 s -> {'met' if result['met'] else 'NOT met'}")
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
        if os.environ.get("CCSYNC_BENCH_KEEP_LOG"):
            print((tmp / "service.log").read_text(), file=sys.stderr)
        cloud_srv.destroy()
        pc_srv.destroy()


if __name__ == "__main__":
    main()
