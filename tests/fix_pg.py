"""Real PostgreSQL servers for the tests: embedded PostgreSQL 18 always, Debian's PostgreSQL 15 when installed.

Servers start once per test run; every test gets fresh databases, so tests stay fast and independent.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from psycopg import sql

from reconciler.devtools.pgserver import PgServer, debian_bindir, embedded_bindir

SERVERS = {"pg18": embedded_bindir, "pg15": lambda: debian_bindir(15)}
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _selected() -> list[str]:
    wanted = os.environ.get("CCSYNC_TEST_SERVERS", "pg18,pg15")
    return [name for name in wanted.split(",") if name in SERVERS]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "one_version: runs on the first selected server only (end-to-end tests whose behaviour does not depend "
        "on the PostgreSQL version; the engine's SQL is covered on every version)",
    )


def pytest_collection_modifyitems(config, items):
    first = _selected()[0] if _selected() else None
    keep, drop = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("pg")
        if param is not None and param != first and item.get_closest_marker("one_version"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=_selected())
def pg(request, tmp_path_factory) -> PgServer:
    """A running PostgreSQL server, once per version for the whole run."""
    bindir = SERVERS[request.param]()
    if bindir is None:
        pytest.skip(f"{request.param}: server binaries not installed (apt-get install postgresql-15 to cover it)")
    server = PgServer(tmp_path_factory.mktemp(request.param) / "data", bindir=bindir, settings=TEST_SETTINGS)
    server.init().start()
    yield server
    server.stop("immediate")


class Databases:
    """Creates fresh databases on a server and drops them when the test ends."""

    def __init__(self, server: PgServer):
        self.server = server
        self.names: list[str] = []

    def new(self, label: str = "db", *, template: str | None = None) -> str:
        """A fresh database: empty (from template0), or a copy of the database `template`."""
        name = f"t_{label}_{uuid.uuid4().hex[:8]}"
        if template is None:
            self.server.create_database(name)
        else:
            with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
                conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name),
                                                                             sql.Identifier(template)))
        self.names.append(name)
        return self.server.dsn(name)

    def drop_all(self) -> None:
        for name in self.names:
            try:
                self.server.drop_database(name)
            except psycopg.OperationalError:
                pass  # the test stopped the server


@pytest.fixture
def databases(pg):
    dbs = Databases(pg)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def dsn(databases) -> str:
    """A fresh, empty database."""
    return databases.new()


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def default_pg(tmp_path_factory) -> PgServer:
    """One embedded PostgreSQL 18 server, for the tests that need a database but not every version."""
    server = PgServer(tmp_path_factory.mktemp("default") / "data", settings=TEST_SETTINGS)
    server.init().start()
    yield server
    server.stop("immediate")
