"""A practice for the engine tests: one cloud database and several node databases, each a real database."""

from __future__ import annotations

import psycopg
import pytest

import reconciler
from reconciler import sync
from reconciler.config import Settings

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


class Practice:
    def __init__(self, databases, nodes=("pc-1",), policy="manual"):
        self.databases = databases
        self.cloud = databases.new("cloud")
        reconciler.install(self.cloud, "cloud")
        self.sql(self.cloud, SCHEMA)
        reconciler.track(self.cloud, ["patients", "encounters"], policy)
        self.nodes = {}
        for name in nodes:
            self.add_node(name)

    def add_node(self, name: str, init: bool = True) -> str:
        dsn = self.databases.new(name.replace("-", "_"))
        reconciler.install(dsn, name)
        self.nodes[name] = dsn
        if init:
            sync.init(self.settings(name))
        return dsn

    def settings(self, node: str) -> Settings:
        return Settings(local=self.nodes[node], cloud=self.cloud)

    def sql(self, dsn: str, query: str, params=None):
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

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
        return self.sql(dsn, "select kind, node, table_name, pk::text, columns from ccsync.conflicts "
                             "where status = %s order by id", (status,))


@pytest.fixture
def practice(databases):
    return Practice(databases)


@pytest.fixture
def make_practice(databases):
    return lambda **kw: Practice(databases, **kw)
