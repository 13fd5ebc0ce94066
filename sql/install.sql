-- The objects ccsync installs, in dependency order (as PgQ's structure/install.sql).
-- The Alembic revisions create the tables (tables/vN_*.sql) and then load every file below, so
-- that head always has the current functions and views (all written with create or replace).
\i functions/ccsync.hlc_next.sql
\i functions/ccsync.hlc_reserve.sql
\i functions/ccsync.hlc_observe.sql
\i functions/ccsync.json_as_text.sql
\i functions/ccsync.capture_row.sql
\i functions/ccsync.capture_insert.sql
\i functions/ccsync.capture_truncate.sql
\i functions/ccsync.journal_notify.sql
\i functions/ccsync.track.sql
\i functions/ccsync.untrack.sql
\i views/ccsync.changes.sql
