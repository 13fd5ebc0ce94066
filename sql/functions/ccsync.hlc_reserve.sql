-- ----------------------------------------------------------------------
-- Function: ccsync.hlc_reserve(1)
--
--      Reserves a run of consecutive hybrid-logical-clock values, for a
--      statement that journals many changes at once (the changes a push
--      applied with one set statement): one call instead of one per row.
--
-- Parameters:
--      p_count     how many values (at least one is reserved)
--
-- Returns:
--      bigint: the first value of the run; the run is that value and the
--      p_count - 1 following ones. The next ccsync.hlc_next() returns a
--      higher value (with the same caveat as hlc_next about two sessions
--      at the same instant). A run longer than 65,536 values takes the
--      clock a few milliseconds ahead of the wall clock, as a burst of
--      hlc_next calls would.
--
-- Tables:
--      ccsync.hlc_seq (sequence)
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_reserve(p_count bigint)
returns bigint
language sql
volatile
as $$
    select setval('ccsync.hlc_seq', ccsync.hlc_next() + greatest(p_count, 1) - 1) - greatest(p_count, 1) + 1
$$;
