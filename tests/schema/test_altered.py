"""Capture of a table altered since it was tracked: the application's writes go on, journaled in canonical form."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

import reconciler
from reconciler.db import CANONICAL
from tests.fix_sync import APP, OWNER, as_role, ensure_role, new_database

# a value of each type, written as text and read by the type's input function in the application's session
VALUES = {
    "integer": "7", "bigint": "9007199254740993", "numeric": "1.50", "text": "Zoë 'Dr' 患者", "boolean": "true",
    "double precision": "-0", "real": "0.1", "interval": "1 day 02:00:00.5", "jsonb": '{"a": null, "n": 1.10}',
    "timestamp with time zone": "2026-03-01 12:34:56.789+01", "date": "2024-02-29", "bytea": "\\x00ff",
    "integer[]": "[0:1]={1,NULL}", "uuid": "0b7e5c7c-8c9f-4f61-9d3a-2f1b6d1e0a11",
}
TYPES = sorted(VALUES)
SESSION = st.fixed_dictionaries({  # what the application's session may have set
    "TimeZone": st.sampled_from(["UTC", "Europe/Brussels", "Pacific/Chatham"]),
    "DateStyle": st.sampled_from(["ISO, YMD", "SQL, DMY", "German, DMY"]),
    "extra_float_digits": st.sampled_from(["-5", "0", "3"]),
    "IntervalStyle": st.sampled_from(["postgres", "iso_8601"]),
})
# one ALTER TABLE, by the schema owner: its kind, a column picked by position among the others, a type
ALTER = st.tuples(st.sampled_from(["add", "drop", "rename", "type"]), st.integers(0, 20), st.sampled_from(TYPES))


@pytest.fixture(scope="module")
def deployment(pg):
    """A database as a deployment has it: ccsync and the tables belong to the schema owner, the application writes."""
    from tests.fix_pg import Databases

    databases = Databases(pg)
    owner = new_database(databases, "altered", OWNER)
    reconciler.install(owner, "cloud")
    ensure_role(pg, APP)
    reconciler.grant(owner, [APP])
    yield owner, as_role(owner, APP)
    databases.drop_all()


_tables = itertools.count()


def columns(conn, table: str) -> list[tuple[str, str]]:
    return conn.execute("select attname, format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
                        "%s::regclass and attnum > 1 and not attisdropped order by attnum", (table,)).fetchall()


def images(conn, table: str) -> dict[int, str]:
    """Every row's canonical image, as a table tracked right now journals it (the oracle), as jsonb's text."""
    expr = conn.execute("select ccsync.row_image_sql(%s::regclass, 'r')", (table,)).fetchone()[0]
    return dict(conn.execute(sql.SQL("select r.id, (" + expr + ")::text from {} as r").format(sql.Identifier(table))))


def journaled_as_expected(owner, app, table: str, statement: sql.Composable) -> None:
    """Run one statement of the application; the journal gets exactly what the rows' images say it changed."""
    seen = owner.execute("select coalesce(max(id), 0) from ccsync.journal").fetchone()[0]
    before = images(owner, table)
    app.execute(statement)
    after = images(owner, table)
    got = owner.execute("select op::text, (pk ->> 'id')::int, old::text, new::text from ccsync.journal "
                        "where id > %s and table_name = %s", (seen, f"public.{table}")).fetchall()
    expected = ([("I", k, None, after[k]) for k in after.keys() - before.keys()]
                + [("U", k, before[k], after[k]) for k in after.keys() & before.keys() if before[k] != after[k]]
                + [("D", k, before[k], None) for k in before.keys() - after.keys()])
    assert sorted(got) == sorted(expected)


def alter(conn, table: str, step: tuple[str, int, str], names) -> None:
    kind, pick, type_ = step
    cols = columns(conn, table)
    t = sql.Identifier(table)
    if kind == "add" or not cols:
        conn.execute(sql.SQL("alter table {} add column {} {} default {}").format(
            t, sql.Identifier(next(names)), sql.SQL(type_), sql.Literal(VALUES[type_])))
        return
    col = sql.Identifier(cols[pick % len(cols)][0])
    if kind == "drop":
        conn.execute(sql.SQL("alter table {} drop column {}").format(t, col))
    elif kind == "rename":
        conn.execute(sql.SQL("alter table {} rename column {} to {}").format(t, col, sql.Identifier(next(names))))
    else:
        conn.execute(sql.SQL("alter table {} alter column {} drop default, alter column {} type {} using {}").format(
            t, col, col, sql.SQL(type_), sql.Literal(VALUES[type_])))


def write(owner, app, table: str, key: int) -> None:
    """The application's three kinds of statement, against whatever columns the table has now."""
    cols = columns(owner, table)
    t = sql.Identifier(table)
    names = [sql.Identifier(c) for c, _ in cols]
    values = [sql.SQL("cast({} as {})").format(sql.Literal(VALUES[ty]), sql.SQL(ty)) for _, ty in cols]
    journaled_as_expected(owner, app, table, sql.SQL("insert into {} ({}) values ({})").format(
        t, sql.SQL(", ").join([sql.Identifier("id"), *names]), sql.SQL(", ").join([sql.Literal(key), *values])))
    if cols:
        journaled_as_expected(owner, app, table, sql.SQL("update {} set {} = null where id <> {}").format(
            t, names[0], sql.Literal(key)))
    journaled_as_expected(owner, app, table, sql.SQL("delete from {} where id = {}").format(t, sql.Literal(key - 1)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(ALTER, min_size=1, max_size=4), first=st.lists(st.sampled_from(TYPES), max_size=3),
       session=SESSION)
def test_writes_after_any_alter_table_are_journaled_as_a_freshly_tracked_table_would(deployment, steps, first,
                                                                                     session):
    owner_dsn, app_dsn = deployment
    table = f"altered_{next(_tables)}"
    names = (f"c{i}" for i in itertools.count())
    with psycopg.connect(owner_dsn, autocommit=True) as owner, psycopg.connect(app_dsn, autocommit=True) as app:
        owner.execute(sql.SQL("create table {} (id int primary key{})").format(
            sql.Identifier(table), sql.SQL("".join(f", {next(names)} {ty}" for ty in first))))
        reconciler.track(owner_dsn, [table])  # the application's role is granted the table
        app.execute("select set_config(k, v, false) from jsonb_each_text(%s) as s(k, v)", (Jsonb(session),))
        owner.execute("select set_config(k, v, false) from jsonb_each_text(%s) as s(k, v)", (Jsonb(CANONICAL),))
        write(owner, app, table, 1)
        for key, step in enumerate(steps, start=2):
            alter(owner, table, step, names)
            write(owner, app, table, key)  # never refused, journaled as the table is now
        owner.execute(sql.SQL("drop table {}").format(sql.Identifier(table)))


def test_a_table_tracked_again_after_its_alter_journals_the_same(deployment):
    """`track` again writes the new shape out: the images are those the altered table journaled meanwhile."""
    owner_dsn, app_dsn = deployment
    with psycopg.connect(owner_dsn, autocommit=True) as owner, psycopg.connect(app_dsn, autocommit=True) as app:
        owner.execute("create table again (id int primary key, a int, b text)")
        reconciler.track(owner_dsn, ["again"])
        owner.execute("alter table again alter column a type float8 using a / 2.0; "
                      "alter table again rename column b to note; alter table again add column seen interval")
        app.execute("insert into again values (1, 0.5, 'altered', '1 day'), (2, -0.0, null, null)")
        reconciler.track(owner_dsn, ["again"])
        app.execute("insert into again values (3, 0.5, 'altered', '1 day'), (4, -0.0, null, null)")
        rows = owner.execute("select new from ccsync.journal where table_name = 'public.again' order by id").fetchall()
        assert [{**r, "id": 0} for (r,) in rows[:2]] == [{**r, "id": 0} for (r,) in rows[2:]]
        assert rows[0][0] == {"id": 1, "a": "0.5", "note": "altered", "seen": "1 day"}
        owner.execute("drop table again")


def test_a_write_in_the_transaction_that_altered_the_table_is_journaled(deployment):
    owner_dsn, _ = deployment
    with psycopg.connect(owner_dsn) as owner:
        owner.execute("create table same_tx (id int primary key, a int)")
        owner.commit()
        reconciler.track(owner_dsn, ["same_tx"])
        owner.execute("insert into same_tx values (1, 1)")
        owner.execute("alter table same_tx drop column a")
        owner.execute("alter table same_tx add column a text")
        owner.execute("update same_tx set a = 'x'")
        owner.commit()
        rows = owner.execute("select op::text, old, new from ccsync.journal where table_name = 'public.same_tx' "
                             "order by id").fetchall()
        assert rows == [("I", None, {"id": 1, "a": 1}), ("U", {"id": 1, "a": None}, {"id": 1, "a": "x"})]
        owner.execute("drop table same_tx")
        owner.commit()


@pytest.mark.one_version
def test_the_same_alter_everywhere_without_tracking_again_replicates_every_write(make_practice):
    """The README's way of changing a schema, minus `track`: the application writes on the PC and on the cloud
    right after the ALTER TABLE, the writes travel both ways, and every database converges."""
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name, phone, balance) values (1, 'Anna', '111', 1.50)")
    p.sync_all()
    for dsn in [p.cloud_owner, *p.nodes.values()]:
        p.sql(dsn, "alter table patients add column weight float8; alter table patients drop column notes; "
                   "alter table patients alter column balance type numeric(12, 3)")
    p.sql(p.apps["pc-1"], "insert into patients (id, name, weight) values (2, 'Bert', 71.3)")
    p.sql(p.apps["pc-1"], "update patients set weight = '-0' where id = 1")
    p.sql(p.cloud, "insert into patients (id, name, weight, balance) values (3, 'Chloé', 0.1, 2.125)")
    p.sync_all()
    p.assert_converged(tables=("patients",))
    assert p.sql(p.cloud, "select id, weight::text, balance::text from patients order by id") == [
        (1, "-0", "1.500"), (2, "71.3", "0.000"), (3, "0.1", "2.125")]


ROOT = Path(__file__).resolve().parents[2]


def ccsync_before(added: str, tmp_path) -> Path:
    """The source of ccsync as it was before the commit that added the file `added`, from git."""
    commits = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", added], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert commits, f"no commit added {added} (a shallow clone?)"
    tree = tmp_path / "before"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", f"{commits[-1]}^"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "ccsync_sql").symlink_to("sql")  # its SQL files, as its wheel names them
    return tree


@pytest.mark.one_version
def test_an_upgrade_brings_back_the_writes_the_previous_capture_refused(databases, tmp_path):
    """A table altered under a ccsync from before this capture refused the application's writes; after `ccsync
    install` of this one they are captured, without tracking the table again."""
    previous = ccsync_before("sql/functions/ccsync.table_shape_sql.sql", tmp_path)
    dsn = databases.new("upgrade")

    def ccsync(tree, *args):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env.pop("CCSYNC_CONFIG", None)
        done = subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args, "--dsn", dsn], cwd=tree,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    ccsync(previous, "install", "--name", "pc-1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table t (id int primary key, a int)")
    ccsync(previous, "track", "t")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("alter table t add column b text")
        with pytest.raises(psycopg.Error, match="altered since ccsync tracked it"):
            conn.execute("insert into t values (1, 1, 'refused before the upgrade')")
    ccsync(ROOT, "install", "--name", "pc-1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into t values (1, 1, 'captured')")
        conn.execute("alter table t rename column a to aa")
        conn.execute("update t set aa = 2")
        assert conn.execute("select op::text, new::text from ccsync.journal order by id").fetchall() == [
            ("I", '{"a": 1, "b": "captured", "id": 1}'), ("U", '{"b": "captured", "aa": 2, "id": 1}')]
