-- ----------------------------------------------------------------------
-- Function: ccsync.notify_journal(0)
--
--      Wakes up the services listening on channel 'ccsync_journal' when
--      the transaction commits, so a change travels at once. Called once
--      per transaction that journals (a capture function calls it when the
--      transaction-local setting ccsync.notified is not yet 'on', and sets
--      it). A commit that notifies takes a cluster-wide lock, so each
--      session notifies at most every 50 ms (session setting
--      ccsync.notified_at); the services also look at the journal sequence
--      four times a second, which catches the commits in between.
--
-- Returns:
--      void
-- ----------------------------------------------------------------------
create or replace function ccsync.notify_journal()
returns void
language plpgsql
as $$
declare
    v_now  double precision := extract(epoch from clock_timestamp());
    v_last text := current_setting('ccsync.notified_at', true);
begin
    perform set_config('ccsync.notified', 'on', true);
    if v_last is null or v_last = '' or v_now - v_last::double precision > 0.05 then
        perform pg_notify('ccsync_journal', '');
        perform set_config('ccsync.notified_at', v_now::text, false);
    end if;
end;
$$;
