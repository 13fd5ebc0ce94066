"""sql/README.md lists every table ccsync installs, where its rows live and who writes them: checked here
against the catalog and the rows of a real practice (a cloud and a PC that synced)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.fix_sync import APP, Practice, pc_role

README = Path(__file__).resolve().parents[2] / "sql" / "README.md"
ROWS = dict(re.findall(r"^\| `ccsync\.(\w+)` \| (\w+) \|", README.read_text(), re.M))
WRITES = "INSERT, UPDATE, DELETE, TRUNCATE"


def _one(dsn: str, query: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _tables(dsn: str) -> set[str]:
    return {r[0] for r in _one(dsn, "select relname from pg_class where relnamespace = 'ccsync'::regnamespace "
                                    "and relkind in ('r', 'p')")}


def _rows(dsn: str, table: str) -> int:
    return _one(dsn, f"select count(*) from ccsync.{table}")[0][0]  # noqa: S608 - names from the catalog


@pytest.fixture(scope="module")
def synced(pg, tmp_path_factory):
    from tests.fix_pg import Databases

    dbs = Databases(pg)
    p = Practice(dbs)
    p.sql(p.apps["pc-1"], "insert into patients (id, name) values (1, 'A')")
    p.sql(p.cloud, "insert into patients (id, name) values (2, 'B')")
    p.sync_all()
    yield p
    dbs.drop_all()


def test_the_overview_lists_exactly_the_tables_of_a_cloud_and_of_a_pc(synced):
    assert set(ROWS) == _tables(synced.cloud_owner) == _tables(synced.nodes["pc-1"])
    assert set(ROWS.values()) <= {"both", "cloud", "PC", "replicated"}


def test_the_replicated_tables_are_the_ones_ccsync_tracks(synced):
    tracked = {r[0] for r in _one(synced.cloud_owner, "select table_name from ccsync.tracked "
                                                      "where table_name like 'ccsync.%'")}
    assert tracked == {f"ccsync.{t}" for t, side in ROWS.items() if side == "replicated"}


def test_a_table_of_one_side_holds_no_rows_on_the_other(synced):
    for table, side in ROWS.items():
        if side == "cloud":
            assert _rows(synced.nodes["pc-1"], table) == 0, f"ccsync.{table} has rows on a PC"
        if side == "PC":
            assert _rows(synced.cloud_owner, table) == 0, f"ccsync.{table} has rows on the cloud"


@pytest.mark.parametrize("who", ["pc", "app"])
def test_no_pc_and_no_application_may_write_a_ccsync_table_directly(synced, who):
    role = pc_role("pc-1") if who == "pc" else APP
    writable = [t for t in ROWS if _one(synced.cloud_owner, "select has_table_privilege(%s, %s, %s)",
                                        (role, f"ccsync.{t}", WRITES))[0][0]]
    assert writable == []
