-- ----------------------------------------------------------------------
-- Function: ccsync.notify_journal(0)
--
--      Wakes up the services listening on channel 'ccsync_journal' when
--      the transaction commits, so a change travels at once. A commit that
--      notifies takes a cluster-wide lock, so each session notifies at most
--      every 50 ms (session setting ccsync.notified_at, the epoch seconds of
--      its last notification; a transaction that rolls back takes its
--      setting back with it); the services also look at the journal
--      sequence four times a second, which catches the commits in between.
--      A capture function calls it only when that setting is 50 ms old and
--      older than the transaction (the same test and one more, as a plain
--      expression of its own), so most statements never call it.
--
-- Returns:
--      void
-- ----------------------------------------------------------------------
create or replace function ccsync.notify_journal()
returns void
language plpgsql
as $$
declare
    v_now  double precision := date_part('epoch', clock_timestamp());
    v_last text := current_setting('ccsync.notified_at', true);
begin
    if v_last is null or v_last = '' or v_now - v_last::double precision > 0.05 then
        perform pg_notify('ccsync_journal', '');
        perform set_config('ccsync.notified_at', v_now::text, false);
    end if;
end;
$$;
