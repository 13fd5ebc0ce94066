"""The tables' cache of a long-running service (reconciler/engine/sides.py: tracked_tables, keyed by each table's
signature) never serves a table as it was before an ALTER that changes what the sync reads of it: the columns, their
types as the apply casts them, generated and identity columns, the primary key and whether it is deferrable."""

import psycopg
import pytest

from reconciler.engine.sides import tracked_tables
from reconciler.engine.tablesql import Table

ALTERS = [
    "alter table patients add column visits int",
    "alter table patients drop column notes",
    "alter table patients rename column phone to telephone",
    "alter table patients alter column phone type varchar(20)",
    "alter table patients alter column balance type numeric(12, 2)",
    "alter type mood rename to humeur",
    "create schema other; alter type mood set schema other",
    "alter table encounters drop constraint encounters_patient_id_fkey; "
    "alter table patients drop constraint patients_pkey, add primary key (id) deferrable initially immediate",
    "alter table encounters drop constraint encounters_patient_id_fkey; "
    "alter table patients drop constraint patients_pkey, add primary key (id, name)",
    "alter table patients alter column id add generated always as identity",
    "alter table patients add column upper_name text generated always as (upper(name)) stored",
]


@pytest.mark.parametrize("alter", ALTERS)
def test_the_cached_table_after_an_alter_is_the_table_as_loaded_fresh(practice, alter):
    node = practice.nodes["pc-1"]
    practice.sql(node, "create type mood as enum ('ok', 'ko'); alter table patients add column mood mood")
    cache: dict = {}
    with psycopg.connect(node, autocommit=True) as conn:
        before = tracked_tables(conn, cache)["public.patients"]
        conn.execute(alter)
        cached = tracked_tables(conn, cache)["public.patients"]
        fresh = Table.load(conn, "public.patients", before.policy)
    assert cached == fresh
    assert cached != before  # the ALTER did change what the sync reads (else the case proves nothing)
