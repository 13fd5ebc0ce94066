-- The objects ccsync installs, in dependency order (as PgQ's structure/install.sql).
-- The Alembic revisions create the tables (tables/vN_*.sql) and then load every file below, so
-- that head always has the current functions and views (all written with create or replace), and
-- the privileges on them last. Function bodies are not checked while loading (as pg_dump does): a
-- function may read a table that a later revision creates.
\i functions/ccsync.hlc_at_least.sql
\i functions/ccsync.hlc_next.sql
\i functions/ccsync.hlc_observe.sql
\i functions/ccsync.trusted_session.sql
\i functions/ccsync.caller_node.sql
\i functions/ccsync.require_node.sql
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
\i functions/ccsync.node_register.sql
\i functions/ccsync.node_leave.sql
\i functions/ccsync.push_position.sql
\i functions/ccsync.push_store.sql
\i functions/ccsync.report_pulled.sql
\i functions/ccsync.prune.sql
\i functions/ccsync.record_conflict.sql
\i functions/ccsync.record_refusal.sql
\i functions/ccsync.journal_for_node.sql
\i functions/ccsync.decide.sql
\i functions/ccsync.grant_tables.sql
\i functions/ccsync.grant_pc.sql
\i functions/ccsync.revoke_pc.sql
\i functions/ccsync.grant_app.sql
\i functions/ccsync.pc_add.sql
\i functions/ccsync.regrant.sql
\i functions/ccsync.track.sql
\i functions/ccsync.untrack.sql
\i views/ccsync.changes.sql
\i functions/ccsync.sumehr_claim_alive.sql
\i functions/ccsync.sumehr_claim.sql
\i functions/ccsync.sumehr_release.sql
\i functions/ccsync.sumehr_record.sql
\i functions/ccsync.sumehr_refresh.sql
\i functions/ccsync.sumehr_retry.sql
\i privileges.sql
