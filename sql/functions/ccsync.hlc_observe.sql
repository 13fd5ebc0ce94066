-- ----------------------------------------------------------------------
-- Function: ccsync.hlc_observe(1)
--
--      Moves this database's clock past a timestamp received from another
--      database, so that every later local change is ordered after it.
--
-- Parameters:
--      p_hlc   the highest clock value of the changes just received
--
-- Returns:
--      bigint: a clock value past p_hlc and the wall clock
--
-- Runs as its owner: a PC's role moves the cloud's clock with it, and
--      has no privilege on the sequence itself.
--
-- Tables:
--      ccsync.hlc_seq
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_observe(p_hlc bigint)
returns bigint
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    select ccsync.hlc_at_least(greatest(coalesce(p_hlc + 1, 0),
                                        (extract(epoch from clock_timestamp()) * 1000)::bigint << 16))
$$;
