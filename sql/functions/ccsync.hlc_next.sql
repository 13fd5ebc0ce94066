-- ----------------------------------------------------------------------
-- Function: ccsync.hlc_next(0)
--
--      The next hybrid-logical-clock value of this database: one per
--      captured statement (a capture trigger calls it once per statement,
--      however many rows it journals, none included).
--
-- Returns:
--      bigint: (wall-clock milliseconds << 16) + counter. Never lower than
--      the wall clock, higher than every value handed out before, and
--      unique in this database (see ccsync.hlc_at_least).
--
-- How: one expression, inlined into the calling statement: the next value
--      of the sequence when it is not behind the wall clock (the common
--      case: a statement costs one nextval), else ccsync.hlc_at_least.
--
-- Tables:
--      ccsync.hlc_seq (sequence)
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_next()
returns bigint
language sql
volatile
as $$
    select case when pg_catalog.nextval('ccsync.hlc_seq')
                     >= (extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint << 16
                then pg_catalog.currval('ccsync.hlc_seq')
                else ccsync.hlc_at_least((extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint << 16)
           end
$$;
