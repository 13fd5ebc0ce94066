-- The objects ccsync installs (as PgQ's structure/install.sql), grouped by who calls them.
-- The Alembic revisions run their files of revisions/ (tables and data steps) and then this file, so
-- that head always has the current functions and views (all written with create or replace), and
-- the privileges on them last. Function bodies are not checked while loading (as pg_dump does): a
-- function may read a table that a later revision creates. sql/README.md lists every table.

-- Internal: the clock, who is calling, and the one insert of a conflict record (used by the functions below)
\i functions/ccsync.hlc_at_least.sql
\i functions/ccsync.hlc_next.sql
\i functions/ccsync.trusted_session.sql
\i functions/ccsync.caller_node.sql
\i functions/ccsync.require_node.sql
\i functions/ccsync.insert_conflict.sql

-- Internal: capture. Each tracked table gets its own trigger function, generated for its columns by
-- capture_function_sql (run as the schema owner); the journal notifies the services once per transaction.
\i functions/ccsync.notify_journal.sql
\i functions/ccsync.journal_notify.sql
\i functions/ccsync.value_sql.sql
\i functions/ccsync.changed.sql
\i functions/ccsync.row_image_sql.sql
\i functions/ccsync.key_match_sql.sql
\i functions/ccsync.capture_function.sql
\i functions/ccsync.table_shape_sql.sql
\i functions/ccsync.capture_sql.sql
\i functions/ccsync.capture_function_sql.sql
\i functions/ccsync.canonical_sql.sql
\i functions/ccsync.convert_images.sql

-- Public, for a PC's reconciler on the cloud (granted by grant_pc; the node is its role's, design-0.2 §4):
--   init and every sync   node_register
--   push (first)          hlc_observe: the cloud's clock moves past the pushed changes
--   push                  push_position, (the changes applied), record_conflict / record_refusal / decide,
--                         push_store: one cloud transaction per chunk, exactly once
--   pull                  (the journal read since the node's position), journal_for_node, report_pulled
--   housekeeping          prune; uninstall: node_leave
\i functions/ccsync.node_register.sql
\i functions/ccsync.hlc_observe.sql
\i functions/ccsync.node_leave.sql
\i functions/ccsync.push_position.sql
\i functions/ccsync.push_store.sql
\i functions/ccsync.report_pulled.sql
\i functions/ccsync.prune.sql
\i functions/ccsync.record_conflict.sql
\i functions/ccsync.record_refusal.sql
\i functions/ccsync.journal_for_node.sql
\i functions/ccsync.decide.sql

-- Public, for the schema owner: ccsync track / untrack, pc add, grant
\i functions/ccsync.grant_tables.sql
\i functions/ccsync.grant_pc.sql
\i functions/ccsync.revoke_pc.sql
\i functions/ccsync.grant_app.sql
\i functions/ccsync.pc_add.sql
\i functions/ccsync.regrant.sql
\i functions/ccsync.track.sql
\i functions/ccsync.untrack.sql

-- Public, for a PC's Sumehr publisher on the cloud (granted by grant_pc)
\i functions/ccsync.sumehr_claim_alive.sql
\i functions/ccsync.sumehr_claim.sql
\i functions/ccsync.sumehr_release.sql
\i functions/ccsync.sumehr_record.sql
\i functions/ccsync.sumehr_refresh.sql
\i functions/ccsync.sumehr_retry.sql

-- Views, for DBAs and scripts
\i views/ccsync.changes.sql

-- Who may call and read what: last, once every object exists
\i privileges.sql
