-- ----------------------------------------------------------------------
-- Function: ccsync.hlc_next(0)
--
--      The next hybrid-logical-clock value of this database: one per
--      statement that journals (a capture trigger calls it once per
--      statement, however many rows it journals).
--
-- Returns:
--      bigint: (wall-clock milliseconds << 16) + counter. Never lower than
--      the wall clock, higher than every value handed out before, and
--      unique in this database (see ccsync.hlc_at_least).
--
-- Tables:
--      ccsync.hlc_seq (sequence)
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_next()
returns bigint
language sql
volatile
as $$
    select ccsync.hlc_at_least((extract(epoch from clock_timestamp()) * 1000)::bigint << 16)
$$;
