-- ----------------------------------------------------------------------
-- Function: ccsync.journal_notify(trigger)
--
--      The statement trigger function revision 0002 put on ccsync.journal
--      (revision 0011 drops the trigger: the capture functions call
--      ccsync.notify_journal once per transaction instead of a trigger per
--      statement). Kept so that the revisions before 0011 install.
--
-- Returns:
--      trigger (NULL)
--
-- Tables:
--      ccsync.journal (the trigger's table)
-- ----------------------------------------------------------------------
create or replace function ccsync.journal_notify()
returns trigger
language plpgsql
as $$
begin
    perform ccsync.notify_journal();
    return null;
end;
$$;
