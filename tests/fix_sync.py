"""A practice for the end-to-end tests, run as a real deployment runs it (design-0.2 §3), on real databases.

- the cloud database and its ccsync schema belong to OWNER, who installs, tracks and registers the PCs;
- each PC's database belongs to LOCAL, who installs ccsync there and runs its reconciler (the apply role);
  its reconciler reaches the cloud with a role of its own (`pc_role(node)`, registered by `ccsync pc add`);
- the practice application writes with APP, on the cloud and on the PCs, with no privilege on ccsync.

Nothing runs day to day as a superuser: the superuser only creates the roles and the databases, as a DBA does.
`deployment_cloud` and `deployment_pc` build the pieces for fixtures that need their own practice.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import psycopg
import pytest
from alembic import command
from psycopg import conninfo, sql
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

import reconciler
import reconciler.db
from reconciler import sync
from reconciler.config import Settings
from reconciler.schema import install as install_module
from tests.fix_pg import Databases

OWNER = "ccsync_owner"
LOCAL = "ccsync_local"
APP = "practice_app"

SCHEMA = """
create table patients (
    id      int primary key,
    name    text not null,
    phone   text,
    notes   text,
    hub     boolean not null default false,
    balance numeric(10, 2) default 0
);
create table encounters (
    id         int primary key,
    patient_id int not null references patients (id),
    at         timestamptz not null default now(),
    summary    text
);
"""

_ROLES: dict[str, set[str]] = {}  # server data directory -> roles made there
_TEMPLATES: dict[tuple[str, str], str] = {}  # (server data directory, owner) -> its schema template database


def wait_for(predicate, timeout: float = 30.0, what: str = "condition", *, every: float = 0.1) -> None:
    """Ask `predicate` every `every` seconds until it holds, else fail the test naming `what`. A database that
    does not answer yet (a server starting, a cable pulled) counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (psycopg.OperationalError, reconciler.CcsyncError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def on_node(dsn: str, fn, *args, **kwargs):
    """Call a library function that takes the node's connection (conflicts, history, ...) on a connection to `dsn`
    opened as the CLI opens it, closed afterwards."""
    with reconciler.db.open_local(dsn) as conn:
        return fn(conn, *args, **kwargs)


def as_role(dsn: str, role: str) -> str:
    """The same database, reached as another role (the test servers trust local connections)."""
    return conninfo.make_conninfo(dsn, user=role)


def pc_role(node: str) -> str:
    return "ccsync_pc_" + node.replace("-", "_").replace(".", "_")


def ensure_role(server, role: str, *options: str) -> str:
    """A login role on the server (roles are the cluster's, shared by every test of the run), made once."""
    made = _ROLES.setdefault(str(server.datadir), set())
    if role not in made:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() is None:
                conn.execute(sql.SQL("create role {} login {}").format(sql.Identifier(role),
                                                                        sql.SQL(" ".join(options))))
        made.add(role)
    return role


def schema_template(server, owner: str) -> str:
    """A database of `server` holding ccsync's schema at the head revision, made by `owner`, with no identity: a
    cloud or a PC of a practice starts as a copy of it (`create database ... template`, a fraction of the time the
    twelve revisions take), then `reconciler.install` gives the copy its name, its own install id, the apply role
    and its replicated tables, as it does on a database an older ccsync installed. Installing on an empty database
    is what tests/schema/test_install.py and tests/test_upgrade.py exercise."""
    key = (str(server.datadir), owner)
    if key not in _TEMPLATES:
        name = f"template_ccsync_{owner}"
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {} template template0 owner {}").format(sql.Identifier(name),
                                                                                       sql.Identifier(owner)))
        engine = create_engine("postgresql+psycopg://", poolclass=NullPool,
                               creator=lambda: psycopg.connect(as_role(server.dsn(name), owner)))
        try:
            with engine.begin() as conn:
                cfg = install_module._config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            engine.dispose()  # nobody may stay connected to a template
        _TEMPLATES[key] = name
    return _TEMPLATES[key]


def new_database(databases, label: str, owner: str, *, with_schema: bool = False) -> str:
    """A fresh database owned by `owner` (who then owns its public schema too), as the superuser makes it; with
    ccsync's schema already at head (no identity yet: `reconciler.install` gives it one) when `with_schema`."""
    if owner != "postgres":
        ensure_role(databases.server, owner, *(("createrole",) if owner == OWNER else ()))
    admin = databases.new(label, template=schema_template(databases.server, owner) if with_schema else None)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(conn.info.dbname),
                                                                     sql.Identifier(owner)))
    return as_role(admin, owner)


@dataclass
class CloudDb:
    owner: str  # the schema owner: install, track, pc add (and the tests' look into ccsync)
    app: str  # the practice application, online
    server: object = None  # the server it lives on (the PCs' roles are made there)


@dataclass
class PcDb:
    name: str
    local: str  # the PC's database as its reconciler (and the tests) reach it: LOCAL, its apply role
    app: str  # the practice application, offline
    cloud: str  # the cloud, as this PC's reconciler reaches it: its own role

    def settings(self) -> Settings:
        return Settings(local=self.local, cloud=self.cloud)


def deployment_cloud(databases, schema: str, tables: list[str], policy: str = "manual", label: str = "cloud") -> CloudDb:
    """A cloud database: ccsync installed and `tables` tracked by the owner, the application role granted."""
    owner = new_database(databases, label, OWNER, with_schema=True)
    reconciler.install(owner, "cloud")
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(schema)
    if tables:
        reconciler.track(owner, tables, policy)
    ensure_role(databases.server, APP)
    reconciler.grant(owner, [APP])
    return CloudDb(owner, as_role(owner, APP), databases.server)


def deployment_pc(databases, cloud: CloudDb, name: str, *, init: bool = True, label: str | None = None,
                  local_role: str = LOCAL) -> PcDb:
    """A PC: its database (ccsync installed by its owner `local_role`, the application granted), registered on the
    cloud with a role of its own, and initialized."""
    local = new_database(databases, label or name.replace("-", "_").replace(".", "_"), local_role, with_schema=True)
    reconciler.install(local, name)
    reconciler.grant(local, [ensure_role(databases.server, APP)])  # and the tables `init` creates, as it tracks them
    role = ensure_role(cloud.server or databases.server, pc_role(name))
    reconciler.pc_add(cloud.owner, name, role)
    pc = PcDb(name, local, as_role(local, APP), as_role(cloud.owner, role))
    if init:
        sync.init(pc.settings())
    return pc


class Practice:
    """A cloud with `patients` and `encounters` tracked, and PCs. `cloud` is the application's DSN on the cloud,
    `cloud_owner` the schema owner's; `nodes[name]` is a PC's database as its reconciler reaches it, `apps[name]`
    as the application does, `pcs[name]` everything about it."""

    def __init__(self, databases, nodes=("pc-1",), policy="manual"):
        self.databases = databases
        db = deployment_cloud(databases, SCHEMA, ["patients", "encounters"], policy)
        self.cloud_owner, self.cloud = db.owner, db.app
        self.cloud_db = db
        self.pcs: dict[str, PcDb] = {}
        self.nodes: dict[str, str] = {}
        self.apps: dict[str, str] = {}
        for name in nodes:
            self.add_node(name)

    def add_node(self, name: str, init: bool = True, local_role: str = LOCAL) -> str:
        pc = deployment_pc(self.databases, self.cloud_db, name, init=init, local_role=local_role)
        self.pcs[name], self.nodes[name], self.apps[name] = pc, pc.local, pc.app
        return pc.local

    def settings(self, node: str) -> Settings:
        return self.pcs[node].settings()

    def sql(self, dsn: str, query: str, params=None):
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def owner(self, dsn: str) -> str:
        """Where ccsync's tables of that database are read: the cloud's through its schema owner."""
        return self.cloud_owner if dsn == self.cloud else dsn

    def alter(self, ddl: str, table: str = "patients") -> None:
        """The same ALTER TABLE on the cloud and every PC, each tracking the table again, as the README says."""
        for dsn in [self.cloud_owner, *self.nodes.values()]:
            self.sql(dsn, ddl)
            reconciler.track(dsn, [table])

    def rows(self, dsn: str, table: str = "patients"):
        # the whole row as text (an alias no test table has as a column: `t` alone would read a column "t")
        return self.sql(dsn, f"select ccsync_row::text from {table} ccsync_row order by 1")

    def push(self, node):
        return sync.push(self.settings(node))

    def pull(self, node):
        return sync.pull(self.settings(node))

    def sync(self, node):
        return sync.sync(self.settings(node))

    def sync_all(self, rounds: int = 2):
        for _ in range(rounds):
            for node in self.nodes:
                self.sync(node)

    def assert_converged(self, tables=("patients", "encounters")):
        for table in tables:
            expected = self.rows(self.cloud, table)
            for node, dsn in self.nodes.items():
                assert self.rows(dsn, table) == expected, f"{table} differs on {node}"

    def conflicts(self, dsn, status="open"):
        return self.sql(self.owner(dsn), "select kind, node, table_name, pk::text, columns from ccsync.conflicts "
                                         "where status = %s order by id", (status,))


def clone_database(databases, dsn: str, label: str) -> str:
    """A copy of the database of `dsn` (nobody may be connected to it), dropped with the test's databases."""
    source = conninfo.conninfo_to_dict(dsn)["dbname"]
    name = f"t_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(databases.server.dsn(), autocommit=True) as conn:
        owner = conn.execute("select datdba::regrole::text from pg_database where datname = %s", (source,)).fetchone()[0]
        # the same owner, who so owns its public schema (pg_database_owner) as in the original
        conn.execute(sql.SQL("create database {} template {} owner {} strategy file_copy").format(
            sql.Identifier(name), sql.Identifier(source), sql.Identifier(owner)))
    databases.names.append(name)
    return databases.server.dsn(name)


class ClonedPractice(Practice):
    """A copy of a prepared practice (CREATE DATABASE ... TEMPLATE of its cloud and of each PC): the same databases,
    roles and registrations as `template`, in a fraction of the time that installing, tracking, registering and
    initializing take. The PCs' databases hold no DSN: each copy is bound to the copy of the cloud by the DSNs only."""

    def __init__(self, databases, template: Practice):  # not Practice's: nothing to install
        self.databases = databases
        cloud = clone_database(databases, template.cloud_owner, "cloud")
        self.cloud_owner, self.cloud = as_role(cloud, OWNER), as_role(cloud, APP)
        self.cloud_db = CloudDb(self.cloud_owner, self.cloud, databases.server)
        self.pcs = {}
        for name, pc in template.pcs.items():
            local = clone_database(databases, pc.local, name)
            role = conninfo.conninfo_to_dict(pc.local)["user"]
            self.pcs[name] = PcDb(name, as_role(local, role), as_role(local, APP), as_role(self.cloud_owner, pc_role(name)))
        self.nodes = {name: pc.local for name, pc in self.pcs.items()}
        self.apps = {name: pc.app for name, pc in self.pcs.items()}


_PRACTICES: dict[tuple, Practice] = {}  # (server data directory, PC names, policy) -> its prepared practice


def prepared_practice(server, nodes=("pc-1",), policy: str = "manual") -> Practice:
    """A practice made once per server, PC names and policy, the way `Practice` makes one, and kept for the run as
    the template of every test's copy (nobody connects to it again)."""
    key = (str(server.datadir), tuple(nodes), policy)
    if key not in _PRACTICES:
        _PRACTICES[key] = Practice(Databases(server), nodes=tuple(nodes), policy=policy)
    return _PRACTICES[key]


@pytest.fixture
def practice(databases):
    """A fresh practice with one PC: a copy of the prepared one (tests/schema/test_install.py, tests/test_upgrade.py
    and the tests that call `Practice` themselves run the installation itself)."""
    return ClonedPractice(databases, prepared_practice(databases.server))


@pytest.fixture
def make_practice(databases):
    return lambda **kw: ClonedPractice(databases, prepared_practice(databases.server, **kw))
