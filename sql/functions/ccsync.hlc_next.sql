-- ----------------------------------------------------------------------
-- Function: ccsync.hlc_next(0)
--
--      Returns the next hybrid-logical-clock value of this database.
--
-- Returns:
--      bigint: (wall-clock milliseconds << 16) + counter. Never lower than
--      the wall clock, and higher than every value handed out before
--      (barring two sessions that cross a millisecond boundary at the same
--      instant, which may share a value; the journal id orders them).
--
-- Tables:
--      ccsync.hlc_seq (sequence: non-transactional, so writers never wait
--      on each other for the clock)
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_next()
returns bigint
language plpgsql
volatile
as $$
declare
    v_wall bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint << 16;
    v_next bigint := nextval('ccsync.hlc_seq');
begin
    if v_next >= v_wall then
        return v_next;
    end if;
    perform setval('ccsync.hlc_seq', v_wall);
    return v_wall;
end;
$$;
