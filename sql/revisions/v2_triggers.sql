-- ccsync triggers, revision 0002 (after the functions they call are loaded).

create trigger journal_notify
    after insert on ccsync.journal
    for each statement execute function ccsync.journal_notify();
