-- ----------------------------------------------------------------------
-- Function: ccsync.journal_notify(trigger)
--
--      AFTER INSERT statement trigger of ccsync.journal: wakes up the
--      services listening on channel 'ccsync_journal' when the
--      transaction commits, so a change travels at once. A commit that
--      notifies takes a cluster-wide lock, so each session notifies at
--      most every 50 ms; the services also look at the journal sequence
--      four times a second, which catches the commits in between.
--
-- Tables:
--      ccsync.journal (the trigger's table)
-- ----------------------------------------------------------------------
create or replace function ccsync.journal_notify()
returns trigger
language plpgsql
as $$
declare
    v_now  double precision := extract(epoch from clock_timestamp());
    v_last text := current_setting('ccsync.notified_at', true);
begin
    if v_last is null or v_last = '' or v_now - v_last::double precision > 0.05 then
        perform pg_notify('ccsync_journal', '');
        perform set_config('ccsync.notified_at', v_now::text, false);
    end if;
    return null;
end;
$$;
