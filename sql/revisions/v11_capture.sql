-- ccsync, revision 0011: a cheaper capture (issue 16).
--
-- Overview
--   ccsync.journal loses its statement trigger journal_notify (a trigger call per journaled statement): the
--   capture functions notify once per transaction (ccsync.notify_journal). Every tracked table's capture function
--   is then written again (revisions/capture_functions.sql); a table whose columns' JSON form no setting changes
--   gets a function without the capture settings.

drop trigger if exists journal_notify on ccsync.journal;
