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
-- How: the next value of the sequence; when that is behind the wall
--      clock, the sequence is set to the wall clock, which is returned.
--      currval is the value nextval just returned, in this session.
--      Written as one SQL expression, so that the planner inlines it into
--      the calling statement: a capture trigger journaling many rows pays
--      no function call per row.
--
-- Tables:
--      ccsync.hlc_seq (sequence: non-transactional, so writers never wait
--      on each other for the clock)
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_next()
returns bigint
language sql
volatile
as $$
    select case
               when nextval('ccsync.hlc_seq') >= (extract(epoch from clock_timestamp()) * 1000)::bigint << 16
               then currval('ccsync.hlc_seq')
               else setval('ccsync.hlc_seq', (extract(epoch from clock_timestamp()) * 1000)::bigint << 16)
           end
$$;
