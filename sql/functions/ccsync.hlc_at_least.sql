-- ----------------------------------------------------------------------
-- Function: ccsync.hlc_at_least(1)
--
--      A hybrid-logical-clock value of this database that no other call
--      ever returns, not lower than p_floor.
--
-- Parameters:
--      p_floor   the lowest value acceptable (the wall clock, or past a
--                value observed from another database)
--
-- Returns:
--      bigint: (milliseconds << 16) + counter, unique in this database.
--
-- How: every value comes from the sequence, so no two calls share one.
--      When the sequence is behind p_floor it jumps there with setval,
--      which cannot compare-and-set: the jumps are serialized by an
--      advisory lock and each jump re-reads the sequence under it, so no
--      jump moves it back. A call that does not jump takes no lock; one
--      that runs during a jump could only be passed by it if more than 1024
--      values were handed out between the jumper's nextval and its setval
--      (microseconds), which is why a jump lands at least 1024 past what it
--      read. The exception handler gives the lock back whatever happens
--      (a cancelled statement included). The common case (no jump) is
--      inlined into the calling statement by ccsync.hlc_next; this function
--      is called when the sequence is behind.
--
-- Tables:
--      ccsync.hlc_seq (sequence: non-transactional, writers never wait on
--      each other for it except during a jump)
-- ----------------------------------------------------------------------
create or replace function ccsync.hlc_at_least(p_floor bigint)
returns bigint
language plpgsql
volatile
as $$
declare
    v bigint := pg_catalog.nextval('ccsync.hlc_seq');
begin
    if v >= p_floor then
        return v;
    end if;
    begin
        perform pg_catalog.pg_advisory_lock(1667462003, 16);
        v := pg_catalog.nextval('ccsync.hlc_seq');
        if v < p_floor then
            v := pg_catalog.setval('ccsync.hlc_seq', greatest(p_floor, v + 1024));
        end if;
        perform pg_catalog.pg_advisory_unlock(1667462003, 16);
    exception when query_canceled or others then
        if exists (select 1 from pg_catalog.pg_locks as l
                    where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid() and l.granted
                      and l.classid = 1667462003 and l.objid = 16 and l.objsubid = 2) then
            perform pg_catalog.pg_advisory_unlock(1667462003, 16);
        end if;
        raise;
    end;
    return v;
end;
$$;
