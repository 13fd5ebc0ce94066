"""Change capture: what the triggers journal, and what they must not."""

import threading

import psycopg
import pytest

import reconciler
from reconciler.errors import CcsyncError
from tests.fix_sync import new_database

ALL_TYPES = """
create type mood as enum ('calm', 'tense', 'l''angoissé');
create table every_type (
    id          uuid primary key,
    n           numeric,
    n_scaled    numeric(12, 4),
    f           double precision,
    ts          timestamptz,
    d           date,
    iv          interval,
    b           bytea,
    arr_int     int[],
    arr_text    text[],
    j           json,
    jb          jsonb,
    m           mood,
    t           text,
    big         text
)
"""

ROW = {
    "id": "0b7e5c7c-8c9f-4f61-9d3a-2f1b6d1e0a11",
    "n": "123456789012345678901234567890.123456789",
    "n_scaled": "1.5000",
    "f": 0.1,
    "ts": "2026-03-01 12:34:56.789012+01",
    "d": "2026-02-29" if False else "2024-02-29",
    "iv": "1 year 2 mons 3 days 04:05:06.7",
    "b": b"\x00\x01\xffbinary'\"",
    "arr_int": [1, None, 3],
    "arr_text": ['a "quoted"', "b,c", None, "é"],
    "j": '{"z": 1, "a": [1, 2.50]}',
    "jb": '{"nested": {"k": "v"}, "n": 1.10}',
    "m": "l'angoissé",
    "t": "Zoë O'Brien \"Dr\" <script>alert(1)</script> 患者 🩺",
    "big": "x" * 300_000,
}


@pytest.fixture
def dsn(databases):
    """A fresh database holding ccsync's schema at head, not installed yet (tests/fix_sync.py's template: the
    revisions run once per server, tests/schema/test_install.py runs them on empty databases)."""
    return new_database(databases, "capture", "postgres", with_schema=True)


@pytest.fixture
def cloud(dsn):
    reconciler.install(dsn, "cloud")
    return dsn


@pytest.fixture
def node(dsn):
    reconciler.install(dsn, "pc-1")
    return dsn


def journal(conn):
    return conn.execute(
        "select txid, hlc, origin, table_name, op, pk, old, new from ccsync.changes order by id"
    ).fetchall()


def applied(conn, table: str, image: str) -> str:
    """The select list that applies a row image to `table`, as the reconciler does: a cast of each value's text."""
    rows = conn.execute(
        "select format('(%%s ->> %%L)::%%s', %s::text, a.attname, format_type(a.atttypid, a.atttypmod)) "
        "from pg_attribute a where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped "
        "order by a.attnum", (image, table)).fetchall()
    return ", ".join(r[0] for r in rows)


def test_every_type_round_trips_through_the_journal(node, conn):
    conn.execute(ALL_TYPES)
    reconciler.track(node, ["every_type"])
    conn.execute(
        "insert into every_type values (%(id)s, %(n)s, %(n_scaled)s, %(f)s, %(ts)s, %(d)s, %(iv)s, %(b)s, "
        "%(arr_int)s, %(arr_text)s, %(j)s, %(jb)s, %(m)s, %(t)s, %(big)s)",
        ROW,
    )
    conn.execute("insert into every_type (id) values ('00000000-0000-0000-0000-000000000000')")  # NULLs
    # rebuild each row from the journal alone, in a copy of the table, and compare as text: every value is
    # applied with its type's input function, (image ->> 'col')::type
    conn.execute("create table rebuilt (like every_type)")
    conn.execute(f"insert into rebuilt select {applied(conn, 'every_type', 'c.new')} from ccsync.changes c "
                 "where c.op = 'I'")
    assert conn.execute("select count(*) from rebuilt").fetchone()[0] == 2
    # and the text forms are identical, column by column (numeric scale, timestamptz precision, bytea...)
    left = conn.execute("select e::text from every_type e order by id").fetchall()
    right = conn.execute("select r::text from rebuilt r order by id").fetchall()
    assert left == right


def test_insert_journals_whole_row_with_txid_hlc_origin(node, conn):
    conn.execute("create table t (id int primary key, a text, b int)")
    reconciler.track(node, ["t"])
    with conn.transaction():
        conn.execute("insert into t values (1, 'x', 2)")
        txid = conn.execute("select pg_current_xact_id()").fetchone()[0]
    [(jtxid, hlc, origin, table, op, pk, old, new)] = journal(conn)
    assert (jtxid, origin, table, op, pk, old, new) == (txid, "pc-1", "public.t", "I", {"id": 1}, None,
                                                         {"id": 1, "a": "x", "b": 2})
    wall_ms = conn.execute("select (extract(epoch from now()) * 1000)::bigint").fetchone()[0]
    assert abs((hlc >> 16) - wall_ms) < 60_000


def test_update_journals_changed_columns_only(node, conn):
    conn.execute("create table t (id int primary key, a text, b int, c numeric)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t values (1, 'x', 2, 1.0)")
    conn.execute("update t set b = 3 where id = 1")
    conn.execute("update t set a = 'x' where id = 1")  # changes nothing: journals nothing
    conn.execute("update t set c = 1.00 where id = 1")  # same number, other scale: a visible change
    rows = journal(conn)
    assert [(r[4], r[5], r[6], r[7]) for r in rows[1:]] == [
        ("U", {"id": 1}, {"b": 2}, {"b": 3}),
        ("U", {"id": 1}, {"c": 1.0}, {"c": 1.00}),
    ]
    assert conn.execute("select new::text from ccsync.changes order by id desc limit 1").fetchone()[0] == '{"c": 1.00}'


def test_delete_journals_old_row(node, conn):
    conn.execute("create table t (id int primary key, a text)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t values (1, 'x')")
    conn.execute("delete from t")
    assert [(r[4], r[5], r[6], r[7]) for r in journal(conn)][1] == ("D", {"id": 1}, {"id": 1, "a": "x"}, None)


def test_primary_key_change_is_captured_with_the_old_key(node, conn):
    conn.execute("create table t (k1 int, k2 text, v text, primary key (k1, k2))")
    reconciler.track(node, ["t"])
    conn.execute("insert into t values (1, 'a', 'v')")
    conn.execute("update t set k2 = 'b' where k1 = 1")
    op, pk, old, new = journal(conn)[1][4:]
    assert (op, pk, old, new) == ("U", {"k1": 1, "k2": "a"}, {"k2": "a"}, {"k2": "b"})


def test_multi_row_statements_journal_every_row_in_one_transaction(node, conn):
    conn.execute("create table t (id int primary key, v int)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t select g, g from generate_series(1, 500) g")
    conn.execute("update t set v = v + 1 where id <= 200")
    conn.execute("delete from t where id > 450")
    counts = dict(conn.execute("select op, count(*) from ccsync.changes group by op").fetchall())
    assert counts == {"I": 500, "U": 200, "D": 50}
    assert conn.execute("select count(distinct txid) from ccsync.changes").fetchone()[0] == 3


def test_truncate_is_journaled(node, conn):
    conn.execute("create table t (id int primary key)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t values (1)")
    conn.execute("truncate t")
    assert [r[4] for r in journal(conn)] == ["I", "T"]


def test_triggers_fire_even_in_replica_mode(node, conn):
    conn.execute("create table t (id int primary key)")
    reconciler.track(node, ["t"])
    conn.execute("set session_replication_role = replica")
    conn.execute("insert into t values (1)")
    assert len(journal(conn)) == 1


def test_applied_changes_are_not_journaled_on_a_node(node, conn):
    conn.execute("create table t (id int primary key, v text)")
    reconciler.track(node, ["t"])
    with conn.transaction():  # the role that installed the node is its apply role
        conn.execute("select set_config('ccsync.apply', 'on', true)")
        conn.execute("insert into t values (1, 'from cloud')")
        conn.execute("update t set v = 'again' where id = 1")
        conn.execute("delete from t")
    conn.execute("insert into t values (2, 'local')")
    assert [(r[2], r[4]) for r in journal(conn)] == [("pc-1", "I")]


def test_applied_changes_are_journaled_with_their_origin_on_the_cloud(cloud, conn):
    conn.execute("create table t (id int primary key, v text)")
    reconciler.track(cloud, ["t"])
    with conn.transaction():  # a superuser's push (the one-role setup) is stamped with the node it names
        conn.execute("select set_config('ccsync.origin', 'pc-7', true)")
        conn.execute("insert into t values (1, 'from pc-7')")
    conn.execute("insert into t values (2, 'on the cloud')")
    assert [(r[2], r[4]) for r in journal(conn)] == [("pc-7", "I"), ("cloud", "I")]


def test_hlc_increases_within_a_database(node, conn):
    conn.execute("create table t (id int primary key)")
    reconciler.track(node, ["t"])
    for i in range(50):
        conn.execute("insert into t values (%s)", (i,))
    hlcs = [r[1] for r in journal(conn)]
    assert hlcs == sorted(hlcs) and len(set(hlcs)) == 50


def test_hlc_observe_moves_the_clock_past_a_remote_timestamp(node, conn):
    ahead = conn.execute("select ccsync.hlc_next() + (3600000::bigint << 16)").fetchone()[0]
    conn.execute("select ccsync.hlc_observe(%s)", (ahead,))
    assert conn.execute("select ccsync.hlc_next()").fetchone()[0] > ahead


def test_concurrent_writers_each_get_journaled(node, pg):
    with psycopg.connect(node, autocommit=True) as c:
        c.execute("create table t (id int primary key, v int)")
    reconciler.track(node, ["t"])

    def writer(k):
        with psycopg.connect(node, autocommit=True) as c:
            for i in range(40):
                c.execute("insert into t values (%s, 0)", (k * 1000 + i,))
                c.execute("update t set v = v + 1 where id = %s", (k * 1000 + i,))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with psycopg.connect(node) as c:
        assert c.execute("select count(*) from ccsync.journal").fetchone()[0] == 800


# -- bad input --------------------------------------------------------------------------------------
def test_table_without_primary_key_is_refused_and_nothing_installed(node, conn):
    conn.execute("create table good (id int primary key)")
    conn.execute("create table nopk (a int)")
    with pytest.raises(CcsyncError, match="has no primary key: ccsync needs one"):
        reconciler.track(node, ["good", "nopk"])
    assert reconciler.tables(node) == []
    assert conn.execute(
        "select count(*) from pg_trigger where tgname like 'ccsync%' and tgrelid::regclass::text not like 'ccsync.%'"
    ).fetchone()[0] == 0


def test_unknown_table_is_refused(node):
    with pytest.raises(CcsyncError, match="unknown table 'nope'"):
        reconciler.track(node, ["nope"])


def test_unknown_policy_is_refused(node, conn):
    conn.execute("create table t (id int primary key)")
    with pytest.raises(CcsyncError, match="unknown policy 'sometimes'"):
        reconciler.track(node, ["t"], "sometimes")


def test_tracking_without_install_is_refused(databases):
    empty = databases.new()
    with psycopg.connect(empty, autocommit=True) as conn:
        conn.execute("create table t (id int primary key)")
    with pytest.raises(CcsyncError, match="ccsync is not installed in this database"):
        reconciler.track(empty, ["t"])


def test_hostile_table_names_are_quoted_not_formatted(node, conn):
    conn.execute('create schema "we""ird"')
    conn.execute('create table "we""ird"."Odd Table; drop table x" ("Id" int primary key, "v""q" text)')
    [item] = reconciler.track(node, ['"we""ird"."Odd Table; drop table x"'])
    assert item["table"] == '"we""ird"."Odd Table; drop table x"'
    conn.execute('insert into "we""ird"."Odd Table; drop table x" values (1, \'x\')')
    assert journal(conn)[0][5] == {"Id": 1}
    assert reconciler.tables(node)[0]["primary_key"] == ["Id"]


def test_policy_can_be_changed_and_untrack_stops_capture(node, conn):
    conn.execute("create table t (id int primary key)")
    reconciler.track(node, ["public.t"])
    reconciler.track(node, ["t"], "latest-wins")
    assert [(r["table"], r["policy"]) for r in reconciler.tables(node)] == [("public.t", "latest-wins")]
    reconciler.untrack(node, ["t"], force=True)
    conn.execute("insert into t values (1)")
    assert reconciler.tables(node) == []
    assert journal(conn) == []


def test_untrack_refuses_while_changes_wait_to_be_pushed(node, conn):
    conn.execute("create table t (id int primary key)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t values (1)")
    with pytest.raises(CcsyncError, match="not yet pushed"):
        reconciler.untrack(node, ["t"])
    assert len(reconciler.tables(node)) == 1


def test_the_journal_holds_whole_rows_and_readers_derive_the_changed_columns(node, conn):
    conn.execute("create table t (id int primary key, a text, b int)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t values (1, 'x', 2)")
    conn.execute("update t set b = 3")
    raw = conn.execute("select old, new from ccsync.journal where op = 'U'").fetchone()
    assert raw == ({"id": 1, "a": "x", "b": 2}, {"id": 1, "a": "x", "b": 3})
    assert conn.execute("select old, new from ccsync.changes where op = 'U'").fetchone() == ({"b": 2}, {"b": 3})


def test_a_multi_row_update_pairs_each_old_row_with_its_new_row(node, conn):
    conn.execute("create table t (id int primary key, v text)")
    reconciler.track(node, ["t"])
    conn.execute("insert into t select g, 'v' || g from generate_series(1, 60) g")
    conn.execute("update t set v = v || '.' where id % 3 = 0")  # rows in another physical order than their keys
    conn.execute("update t set id = id + 1000, v = v || '!' where id % 2 = 0")
    pairs = conn.execute("select (pk ->> 'id')::int, (new ->> 'id')::int, old ->> 'v', new ->> 'v' "
                         "from ccsync.journal where op = 'U' and (new ->> 'id')::int > 1000").fetchall()
    assert len(pairs) == 30 and all(new == old + 1000 and nv == ov + "!" for old, new, ov, nv in pairs)


def test_depth_says_which_statement_a_trigger_ran(node, conn):
    """A statement an application's trigger runs is journaled deeper, and before the statement that fired it; a
    foreign-key cascade is fired by PostgreSQL from its own queue, after its cause, at the same depth."""
    conn.execute("create table parent (id int primary key)")
    conn.execute("create table child (id int primary key, parent int references parent on update cascade)")
    conn.execute("create table audit (id serial primary key, what text)")
    conn.execute("create function audit() returns trigger language plpgsql as $$ begin "
                 "insert into audit (what) values ('parent ' || new.id); return null; end $$")
    conn.execute("create trigger audit after update on parent for each row execute function audit()")
    reconciler.track(node, ["parent", "child", "audit"])
    conn.execute("insert into parent values (1)")
    conn.execute("insert into child values (10, 1), (11, 1)")
    conn.execute("update parent set id = 2")
    rows = conn.execute("select table_name, op::text, depth from ccsync.journal where txid = "
                        "(select max(txid) from ccsync.journal) order by id").fetchall()
    assert rows == [("public.audit", "I", 2), ("public.parent", "U", 1), ("public.child", "U", 1),
                    ("public.child", "U", 1)]
