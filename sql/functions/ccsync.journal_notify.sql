-- ----------------------------------------------------------------------
-- Function: ccsync.journal_notify(trigger)
--
--      AFTER INSERT statement trigger of ccsync.journal: wakes up the
--      services listening on channel 'ccsync_journal' when the
--      transaction commits (PostgreSQL folds identical notifications of
--      one transaction into one), so a change travels in well under a
--      second instead of waiting for a poll.
--
-- Tables:
--      ccsync.journal (the trigger's table)
-- ----------------------------------------------------------------------
create or replace function ccsync.journal_notify()
returns trigger
language plpgsql
as $$
begin
    perform pg_notify('ccsync_journal', '');
    return null;
end;
$$;
