"""What makes capture cheaper must not change what it journals: settings set only where a column needs them, one
notification per transaction."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from psycopg.types.json import Jsonb

import reconciler
from reconciler.db import CANONICAL

# the types whose JSON form no session setting changes: their tables' capture functions set none
PLAIN = """
create table plain (
    id   bigint primary key,
    i2   smallint, i4 integer, n numeric, b boolean, t text, v varchar(20), c char(4), u uuid,
    d    date, ts timestamp, tm time, tz timetz
)
"""
SESSION = st.fixed_dictionaries({
    "TimeZone": st.sampled_from(["UTC", "Europe/Brussels", "America/St_Johns", "Pacific/Chatham"]),
    "DateStyle": st.sampled_from(["ISO, MDY", "SQL, DMY", "Postgres, MDY", "German, DMY"]),
    "IntervalStyle": st.sampled_from(["postgres", "sql_standard", "iso_8601"]),
    "extra_float_digits": st.integers(-15, 3).map(str),
    "bytea_output": st.sampled_from(["hex", "escape"]),
})
ROW = st.fixed_dictionaries({
    "i2": st.integers(-2**15, 2**15 - 1), "i4": st.integers(-2**31, 2**31 - 1),
    "n": st.decimals(allow_nan=False, allow_infinity=False, places=4).filter(lambda d: abs(d) < 10**20)
         | st.just(Decimal("1.50")),
    "b": st.booleans() | st.none(), "t": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                                 max_size=8),
    "v": st.text("aé' \"\\", max_size=20), "c": st.text("ab ", max_size=4), "u": st.uuids(),
    "d": st.dates(min_value=dt.date(1, 1, 1)) | st.sampled_from(["infinity", "-infinity", "0044-03-15 BC"]),
    "ts": st.datetimes(min_value=dt.datetime(1, 1, 1)) | st.sampled_from(["infinity", "2000-01-01 00:00 BC"]),
    "tm": st.times(), "tz": st.sampled_from(["07:30:00+05:30", "23:59:59.999-12", "00:00:00+00"]),
})
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def plain(pg):
    from tests.fix_pg import Databases

    databases = Databases(pg)
    dsn = databases.new("plain")
    reconciler.install(dsn, "pc-1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(PLAIN)
    reconciler.track(dsn, ["plain"])
    yield dsn
    databases.drop_all()


def test_a_table_of_plain_types_is_captured_without_the_capture_settings(plain):
    with psycopg.connect(plain, autocommit=True) as conn:
        config = conn.execute("select proconfig from pg_proc where oid = ccsync.capture_function('public.plain')"
                              "::regproc").fetchone()[0]
    assert config == ["search_path=pg_catalog, pg_temp", "jit=off", "work_mem=64MB"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=ROW, session=SESSION)
def test_plain_types_are_journaled_canonically_in_any_session(plain, row, session):
    key = next(_keys)
    with psycopg.connect(plain, autocommit=True) as app, psycopg.connect(plain, autocommit=True) as canonical:
        app.execute("select set_config(k, v, false) from jsonb_each_text(%s) as s(k, v)", (Jsonb(session),))
        canonical.execute("select set_config(k, v, false) from jsonb_each_text(%s) as s(k, v)", (Jsonb(CANONICAL),))
        # text values read by each type's input function in the session's own settings
        app.execute("insert into plain values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::date, %s::timestamp, %s, %s)",
                    (key, row["i2"], row["i4"], row["n"], row["b"], row["t"], row["v"], row["c"], row["u"],
                     str(row["d"]) if isinstance(row["d"], str) else row["d"].isoformat(),
                     str(row["ts"]) if isinstance(row["ts"], str) else row["ts"].isoformat(), row["tm"], row["tz"]))
        expr = canonical.execute("select ccsync.row_image_sql('plain', 'r')").fetchone()[0]

        def image() -> str:  # the row's image as a session in the capture settings builds it
            return canonical.execute(f"select ({expr})::text from plain as r where id = %s", (key,)).fetchone()[0]

        def last() -> tuple:
            return canonical.execute("select op::text, old::text, new::text from ccsync.journal where pk ->> 'id' = %s "
                                     "order by id desc limit 1", (str(key),)).fetchone()

        inserted = image()
        assert last() == ("I", None, inserted)
        app.execute("update plain set t = coalesce(t, '') || '.' where id = %s", (key,))
        updated = image()
        assert last() == ("U", inserted, updated)
        app.execute("delete from plain where id = %s", (key,))
        assert last() == ("D", updated, None)


def test_a_transaction_notifies_the_services_once_at_commit(plain):
    with psycopg.connect(plain, autocommit=True) as ear, psycopg.connect(plain) as app:
        ear.execute("listen ccsync_journal")
        app.execute("select pg_sleep(0.06)")  # past the session's last notification
        for key in (100001, 100002, 100003):
            app.execute("insert into plain (id) values (%s)", (key,))
        app.execute("update plain set t = 'x' where id >= 100001")
        assert list(ear.notifies(timeout=0.3, stop_after=1)) == []  # nothing before the commit
        app.commit()
        assert len(list(ear.notifies(timeout=1, stop_after=2))) == 1
        app.execute("select pg_sleep(0.06)")
        app.execute("delete from plain where id >= 100001")
        app.rollback()  # a rolled-back transaction wakes nobody
        assert list(ear.notifies(timeout=0.3, stop_after=1)) == []
        app.execute("select pg_sleep(0.06)")
        app.execute("delete from plain where id >= 100001")
        app.commit()
        assert len(list(ear.notifies(timeout=1, stop_after=1))) == 1


def test_a_transaction_after_a_long_one_notifies_even_within_50_ms_of_its_last_statement(plain):
    """The session's mark stays at the notifying transaction's first statement: a long transaction's later
    statements do not move it, so the next transaction, 50 ms after that first statement, notifies again."""
    with psycopg.connect(plain, autocommit=True) as ear, psycopg.connect(plain) as app:
        ear.execute("listen ccsync_journal")
        app.execute("select pg_sleep(0.06)")
        app.execute("insert into plain (id) values (200001)")
        app.execute("select pg_sleep(0.06)")
        app.execute("insert into plain (id) values (200002)")  # 60 ms into the transaction: no second mark
        app.commit()
        assert len(list(ear.notifies(timeout=1, stop_after=1))) == 1
        app.execute("insert into plain (id) values (200003)")  # at once, but 60 ms after the mark
        app.commit()
        assert len(list(ear.notifies(timeout=1, stop_after=2))) == 1  # its own (the first one's was only one)
        app.execute("delete from plain where id >= 200001")
        app.commit()


SEEN = """
create table seen (jit text, work_mem text);
create function seen() returns trigger language plpgsql as $$
begin
    insert into public.seen values (current_setting('jit'), current_setting('work_mem'));
    return null;
end $$;
create trigger seen after insert on ccsync.journal for each row execute function seen();
"""


@pytest.mark.parametrize("altered", [False, True], ids=["as-tracked", "altered"])
@pytest.mark.parametrize("table", ["plain", "timed"])
def test_the_journal_insert_runs_without_jit_and_with_room_to_sort_whatever_the_session_set(dsn, table, altered):
    """A bulk update's journal insert pairs its rows on positions the planner cannot estimate: without these two
    settings it was costed as the product of both sides (JIT-compiled where the server has JIT) and sorted on disk.
    Every statement of every kind of table runs its journal insert so, and the session's own settings come back."""
    reconciler.install(dsn, "pc-1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table plain (id int primary key, t text)")
        conn.execute("create table timed (id int primary key, t text, at timestamptz)")  # gets the capture settings
        reconciler.track(dsn, [table])
        if altered:
            conn.execute(f"alter table {table} add column extra int")
        conn.execute(SEEN)
        conn.execute("set jit = on")
        conn.execute("set work_mem = '64kB'")
        conn.execute(f"insert into {table} (id, t) select g, 'x' || g from generate_series(1, 3000) as g")
        conn.execute(f"update {table} set t = t || '.'")
        conn.execute(f"delete from {table} where id <= 1000")
        assert conn.execute("select count(*), array_agg(distinct jit), array_agg(distinct work_mem) from seen"
                            ).fetchone() == (7000, ["off"], ["64MB"])
        assert conn.execute("select current_setting('jit'), current_setting('work_mem')").fetchone() == ("on", "64kB")
