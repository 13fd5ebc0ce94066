"""One canonical form (invariant 9, design-0.2 §1): a value is journaled as the same JSON whatever the writing
session's settings, and read back exactly by its type's input function, for every type; the clock hands out each
value once."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from psycopg.types.json import Json, Jsonb

import reconciler
from reconciler.db import CANONICAL

COLUMNS = {  # column: type
    "n": "numeric", "f": "float8", "r": "real", "ts": "timestamptz", "lt": "timestamp", "d": "date",
    "iv": "interval", "b": "bytea", "ai": "int[]", "at": "text[]", "j": "json", "jb": "jsonb", "h": "hstore",
    "m": "money", "u": "uuid", "c": "char(3)", "tz": "timetz",
}
SESSION = st.fixed_dictionaries({  # what an application's session may have set
    "TimeZone": st.sampled_from(["UTC", "Europe/Brussels", "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham"]),
    "DateStyle": st.sampled_from(["ISO, MDY", "SQL, DMY", "Postgres, MDY", "German, DMY", "ISO, YMD"]),
    "IntervalStyle": st.sampled_from(["postgres", "postgres_verbose", "sql_standard", "iso_8601"]),
    "extra_float_digits": st.integers(-15, 3).map(str),
    "bytea_output": st.sampled_from(["hex", "escape"]),
})
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([-0.0, 0.1, 1e-310]))
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
JSON_DOC = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | TEXT,
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=6)
ROW = st.fixed_dictionaries({
    "n": st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: abs(d) < Decimal(10) ** 30)
         | st.just(Decimal("1.50")),
    "f": FLOATS, "r": st.floats(width=32, allow_nan=True),
    "ts": st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1),
                       timezones=st.just(dt.timezone(dt.timedelta(hours=5, minutes=45)))),
    "lt": st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    "d": st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    "iv": st.sampled_from(["1 year 2 mons 3 days 04:05:06.7", "-1 mons +3 days", "-00:00:01.5", "1 day -02:00:00"]),
    "b": st.binary(max_size=8),
    "ai_lower": st.integers(-3, 3), "ai": st.lists(st.integers(-5, 5) | st.none(), min_size=1, max_size=4),
    "at": st.lists(TEXT | st.none(), max_size=3),
    "j": JSON_DOC.map(lambda d: json.dumps(d, indent=1)), "jb": JSON_DOC,
    "h": st.dictionaries(TEXT, TEXT | st.none(), max_size=3),
    "m": st.integers(-10**6, 10**6).map(lambda c: Decimal(c) / 100),
    "u": st.uuids(), "c": st.text("ab é", max_size=3), "tz": st.sampled_from(["07:30:00+05:30", "23:59:59.999-12"]),
})


@pytest.fixture(scope="module")
def canon(pg):
    """A node's database with a table of every kind of column, tracked."""
    from tests.fix_pg import Databases

    databases = Databases(pg)
    dsn = databases.new("canon")
    reconciler.install(dsn, "pc-1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists hstore")
        cols = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
        conn.execute(f"create table canon (id int primary key, {cols})")
    reconciler.track(dsn, ["canon"])
    yield dsn
    databases.drop_all()


def _insert(conn, key: int, row: dict) -> None:
    from psycopg.types.hstore import register_hstore
    from psycopg.types import TypeInfo

    register_hstore(TypeInfo.fetch(conn, "hstore"), conn)
    conn.execute(
        "insert into canon values (%(id)s, %(n)s, %(f)s, %(r)s, %(ts)s, %(lt)s, %(d)s, %(iv)s::interval, %(b)s, "
        "'{}'::int[], %(at)s, %(j)s, %(jb)s, %(h)s, %(m)s::numeric::money, %(u)s, %(c)s, "
        "%(tz)s::timetz)",
        {**row, "id": key, "j": Json(row["j"], dumps=lambda s: s), "jb": Jsonb(row["jb"])})
    # an array with a lower bound other than 1, set as text in the session's own settings (from an empty one, so that
    # the update always changes the row and is journaled: {0} at [1:1] is what an insert of array[0] gives)
    lower, values = row["ai_lower"], row["ai"]
    literal = f"[{lower}:{lower + len(values) - 1}]={{{','.join('NULL' if v is None else str(v) for v in values)}}}"
    conn.execute("update canon set ai = %s::int[] where id = %s", (literal, key))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=ROW, session=SESSION)
def test_a_value_is_journaled_alike_in_any_session_and_read_back_exactly(canon, row, session):
    with psycopg.connect(canon, autocommit=True) as plain, psycopg.connect(canon, autocommit=True) as odd:
        odd.execute("select set_config(k, v, false) from jsonb_each_text(%s) as s(k, v)", (Jsonb(session),))
        plain.execute("delete from canon; delete from ccsync.journal")
        _insert(plain, 1, row)
        _insert(odd, 2, row)
        images = plain.execute("select new - 'id' from ccsync.journal where table_name = 'public.canon' "
                               "and op = 'U' order by id").fetchall()  # the last image of each row: its update
        assert len(images) == 2 and images[0][0] == images[1][0], "one value, one image, whatever the session"
        # read back with the type's input function, in any session: the very value stored (then compared as text in
        # the capture settings, where floats show every digit and -0)
        casts = ", ".join(f"(j.new ->> '{c}')::{t} as {c}" for c, t in COLUMNS.items())
        same = ", ".join(f"b.{c}::text is not distinct from t.{c}::text" for c in COLUMNS)
        for conn in (plain, odd):
            conn.execute(f"create temp table back as select {casts} from ccsync.journal j "
                         "where j.table_name = 'public.canon' and j.op = 'U' and j.pk ->> 'id' = '1'")
            conn.execute("select set_config(k, v, false) from jsonb_each_text(%s) as s(k, v)", (Jsonb(CANONICAL),))
            texts = conn.execute(f"select {same} from back b, canon t where t.id = 1").fetchone()
            conn.execute("drop table back")
            assert all(texts), f"read back differently: {[c for c, ok in zip(COLUMNS, texts) if not ok]}"


def test_sql_null_and_the_json_document_null_stay_apart(canon):
    with psycopg.connect(canon, autocommit=True) as conn:
        conn.execute("delete from canon; delete from ccsync.journal")
        conn.execute("insert into canon (id, j, jb) values (1, 'null', 'null'), (2, null, null)")
        rows = conn.execute("select pk ->> 'id', new -> 'j', new -> 'jb' from ccsync.journal "
                            "where table_name = 'public.canon' and op = 'I' order by pk ->> 'id'").fetchall()
        assert rows == [("1", "null", "null"), ("2", None, None)]


def test_float_minus_zero_nan_and_array_bounds_are_kept(canon):
    with psycopg.connect(canon, autocommit=True) as conn:
        conn.execute("set extra_float_digits = 0")
        conn.execute("delete from canon; delete from ccsync.journal")
        conn.execute("insert into canon (id, f, r, ai) values (1, '-0', 'NaN', '[0:2]={7,8,9}'), (2, 0.30000000000000004, "
                     "'-Infinity', '{1}')")
        rows = conn.execute("select new ->> 'f', new ->> 'r', new ->> 'ai' from ccsync.journal "
                            "where table_name = 'public.canon' and op = 'I' order by pk ->> 'id'").fetchall()
        assert rows == [("-0", "NaN", "[0:2]={7,8,9}"), ("0.30000000000000004", "-Infinity", "{1}")]


def test_two_sessions_crossing_a_millisecond_never_share_a_clock_value(canon):
    """Many writers in parallel, each statement its own clock call: every value is handed out once."""
    with psycopg.connect(canon, autocommit=True) as conn:
        conn.execute("create table if not exists ticks (id int primary key, w int)")
    reconciler.track(canon, ["ticks"])
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            with psycopg.connect(canon, autocommit=True) as c:
                for i in range(300):
                    c.execute("insert into ticks values (%s, %s)", (w * 1000 + i, w))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with psycopg.connect(canon, autocommit=True) as conn:
        total, distinct = conn.execute("select count(*), count(distinct hlc) from ccsync.journal "
                                       "where table_name = 'public.ticks'").fetchone()
        assert total == distinct == 1800


def test_one_clock_value_per_statement(canon):
    with psycopg.connect(canon, autocommit=True) as conn:
        conn.execute("create table if not exists bulk (id int primary key, v int)")
        reconciler.track(canon, ["bulk"])
        before = conn.execute("select last_value from ccsync.hlc_seq").fetchone()[0]
        conn.execute("insert into bulk select g, g from generate_series(1, 2000) g")
        conn.execute("update bulk set v = v + 1")
        conn.execute("update bulk set v = v where false")  # nothing changed: no clock call at all
        stamps = conn.execute("select op::text, count(*), count(distinct hlc) from ccsync.journal "
                              "where table_name = 'public.bulk' group by 1 order by 1").fetchall()
        assert stamps == [("I", 2000, 1), ("U", 2000, 1)]
        after = conn.execute("select last_value from ccsync.hlc_seq").fetchone()[0]
        assert after - before < 1 << 16 or (after >> 16) - (before >> 16) < 60_000  # no run of 4000 values
