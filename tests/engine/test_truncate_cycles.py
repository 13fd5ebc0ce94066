"""A PC empties tables that reference each other (one TRUNCATE): every other PC pulls the removal (issue 12: no PC
stuck).

On the cloud the rows of such tables are removed in one statement (no order of one statement per table would do);
another PC's pull applied that statement's deletes table after table, each checked at its end: the first table's
rows were still referenced by the second's, the pull refused the cloud's transaction, and with nothing to push the
PC stopped there at every sync.
"""

import pytest

import reconciler

pytestmark = pytest.mark.one_version  # foreign keys and the engine's order: the same on every PostgreSQL version

# a household names its head, a person names their household: each table references the other
CYCLE = """
create table households (id int primary key, head_id int, name text);
create table persons (id int primary key, household_id int not null references households (id){deferred}, name text);
alter table households add constraint households_head foreign key (head_id) references persons (id){deferred};
"""
SEED = """
begin;
set constraints all deferred;
insert into households (id, head_id, name) values (1, null, 'h1'), (2, null, 'h2');
insert into persons (id, household_id, name) select i, 1 + i % 2, 'p' || i from generate_series(1, 4) i;
update households set head_id = id;
commit;
"""
TABLES = ["households", "persons"]


@pytest.mark.parametrize("deferred", ["", " deferrable initially deferred"], ids=["immediate", "deferred"])
@pytest.mark.parametrize("truncate", ["truncate households, persons", "truncate persons, households"],
                         ids=["households-first", "persons-first"])
@pytest.mark.parametrize("reference", ["", "1"], ids=["fast", "reference"])
def test_tables_that_reference_each_other_emptied_on_a_pc_are_emptied_on_every_pc(make_practice, monkeypatch,
                                                                                  deferred, truncate, reference):
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, CYCLE.format(deferred=deferred))
    reconciler.track(p.cloud_owner, TABLES)
    for node in ("pc-1", "pc-2"):
        p.add_node(node)
    p.sql(p.cloud, SEED)
    p.sync_all()
    assert p.sql(p.nodes["pc-2"], "select count(*) from persons") == [(4,)]
    p.sql(p.nodes["pc-1"], truncate)
    p.sync("pc-1")
    assert p.sql(p.cloud, "select (select count(*) from households) + (select count(*) from persons)") == [(0,)]
    p.sync("pc-2")  # raised: this node rejected a cloud change
    p.sync_all()
    p.assert_converged(TABLES)
    assert p.sql(p.nodes["pc-2"], "select (select count(*) from households) + (select count(*) from persons)") \
        == [(0,)]


@pytest.mark.parametrize("reference", ["", "1"], ids=["fast", "reference"])
def test_a_pcs_one_statement_deleting_rows_that_reference_each_other_is_pushed(make_practice, monkeypatch, reference):
    """The push applied the statement's deletes table after table on the cloud, each refused by the other table's
    rows: the whole transaction was refused, and the rows read back could not be written back table after table
    either (each refers to the other): the PC stopped at every sync."""
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = make_practice(nodes=())
    p.sql(p.cloud_owner, CYCLE.format(deferred=""))
    reconciler.track(p.cloud_owner, TABLES)
    for node in ("pc-1", "pc-2"):
        p.add_node(node)
    p.sql(p.cloud, SEED)
    p.sync_all()
    p.sql(p.nodes["pc-1"], "with h as (delete from households returning 1), p as (delete from persons returning 1) "
                           "select (select count(*) from h) + (select count(*) from p)")
    p.sync("pc-1")
    assert p.sql(p.cloud, "select (select count(*) from households) + (select count(*) from persons)") == [(0,)]
    p.sync_all()
    p.assert_converged(TABLES)
    assert p.conflicts(p.nodes["pc-1"]) == []
