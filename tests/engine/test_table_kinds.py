"""Tables that need care when ccsync writes them: identity columns, PostgreSQL 18's virtual generated columns."""

import pytest

import reconciler


def test_generated_always_identity_rows_travel_both_ways(make_practice):
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, "create table visits (id int generated always as identity primary key, what text)")
    reconciler.track(p.cloud_owner, ["visits"])
    p.sql(p.cloud, "insert into visits (what) values ('on the cloud')")
    p.add_node("pc-1")
    p.sql(p.cloud, "insert into visits (what) values ('pulled')")
    p.sql(p.nodes["pc-1"], "insert into visits (id, what) overriding system value values (100, 'pushed')")
    p.sync_all()
    p.assert_converged(tables=("visits",))
    assert [r[0] for r in p.sql(p.cloud, "select what from visits order by id")] == ["on the cloud", "pulled", "pushed"]


def test_init_creates_a_virtual_generated_column(make_practice, pg):
    if pg.version() < 18:
        pytest.skip("virtual generated columns are new in PostgreSQL 18")
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, "create table bmi (id int primary key, kg numeric, m numeric, "
                         "v numeric generated always as (kg / (m * m)) virtual)")
    reconciler.track(p.cloud_owner, ["bmi"])
    p.sql(p.cloud, "insert into bmi (id, kg, m) values (1, 80, 2)")
    p.add_node("pc-1")
    p.sql(p.nodes["pc-1"], "insert into bmi (id, kg, m) values (2, 90, 3)")
    p.sync_all()
    p.assert_converged(tables=("bmi",))
    assert p.sql(p.nodes["pc-1"], "select attgenerated from pg_attribute where attrelid = 'bmi'::regclass "
                                  "and attname = 'v'") == [("v",)]


def test_a_deferrable_primary_key_syncs_both_ways_with_conflicts(make_practice):
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, "create table doses (id int, dose text, constraint doses_pkey primary key (id) deferrable)")
    reconciler.track(p.cloud_owner, ["doses"])
    p.sql(p.cloud, "insert into doses values (1, 'cloud'), (2, 'cloud')")
    p.add_node("pc-1")
    p.sql(p.cloud, "insert into doses values (3, 'pulled')")
    p.sql(p.cloud, "update doses set dose = 'cloud edit' where id = 2")
    p.sql(p.nodes["pc-1"], "insert into doses values (3, 'local'), (4, 'pushed')")  # 3: insert_insert
    p.sql(p.nodes["pc-1"], "update doses set dose = 'local edit' where id = 2")  # update_update
    p.sync_all()
    p.assert_converged(tables=("doses",))
    assert p.sql(p.cloud, "select id, dose from doses order by id") == [
        (1, "cloud"), (2, "cloud edit"), (3, "pulled"), (4, "pushed")]
    kinds = sorted(r[0] for r in p.sql(p.cloud_owner, "select kind from ccsync.conflicts"))
    assert kinds == ["insert_insert", "update_update"]
