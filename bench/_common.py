"""What the pgbench benchmarks share: their options, progress lines, pgbench itself, checkpoints, the work folder."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from reconciler.devtools.pgserver import PgServer

_start = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr, with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _start:5.0f}s] {message}", file=sys.stderr, flush=True)


def parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's options, its module docstring's first paragraph as the description."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)


def pgbench_options(p: argparse.ArgumentParser, *, seconds: int, jobs: int | None, scale: int, runs: str) -> None:
    """--seconds, --clients, --jobs, --scale, --runs (runs: the help of --runs)."""
    p.add_argument("--seconds", type=int, default=seconds, help=f"duration of each pgbench run (default {seconds})")
    p.add_argument("--clients", type=int, default=4, help="pgbench clients (default 4)")
    p.add_argument("--jobs", type=int, default=jobs,
                   help=f"pgbench threads (default {jobs if jobs is not None else 'min(clients, CPUs)'})")
    p.add_argument("--scale", type=int, default=scale, help=f"pgbench scale factor (default {scale})")
    p.add_argument("--runs", type=int, default=3, help=runs)


def server_options(p: argparse.ArgumentParser, *, workdir: str) -> None:
    """--bindir, --workdir (workdir: its help), --json."""
    p.add_argument("--bindir", type=Path, default=None,
                   help="PostgreSQL bin directory (default: embedded PostgreSQL 18)")
    p.add_argument("--workdir", type=Path, default=None, help=workdir)
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


@contextlib.contextmanager
def work_folder(args: argparse.Namespace):
    """A throwaway folder for the clusters, under --workdir when given (created if missing)."""
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ccsync-bench-", dir=args.workdir) as tmp:
        yield Path(tmp)


def pgbench(server: PgServer, *args: str, quiet: bool = False) -> str:
    """Run the server's own pgbench over TCP and return its stdout.

    Its stderr (progress lines, errors) goes straight to ours, unless quiet: then it is shown only
    when pgbench fails.
    """
    cmd = [str(server.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", *args]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None,
                          text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + (done.stderr or ""))
        raise SystemExit(f"pgbench failed (exit {done.returncode}): {' '.join(cmd)}")
    return done.stdout


def checkpoint(*servers: PgServer) -> None:
    """Start every timed run right after a checkpoint, so full-page writes cost every side alike."""
    for server in servers:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("checkpoint")
