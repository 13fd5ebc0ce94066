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
--      bigint: the clock value now current
--
-- Runs as its owner: a PC's role moves the cloud's clock with it, and
--      has no privilege on the sequence itself.
--
-- Tables:
--      ccsync.hlc_seq
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_observe(p_hlc bigint)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_now bigint := ccsync.hlc_next();
begin
    if p_hlc is not null and p_hlc >= v_now then
        perform setval('ccsync.hlc_seq', p_hlc + 1);
        return p_hlc + 1;
    end if;
    return v_now;
end;
$$;
