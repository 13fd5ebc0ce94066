-- The roles of a ccsync deployment, for DBAs who prefer SQL to `ccsync pc add` and `ccsync grant` (which
-- run the same functions). Run it as the schema owner of the database, after `ccsync install` and
-- `ccsync track`, with psql variables naming what to grant:
--
--   on the cloud, a PC and its own login role (make the role first: CREATE ROLE ccsync_pc_reception LOGIN ...):
--     psql "host=cloud.example dbname=practice user=practice_owner" -v node=pc-reception \
--          -v pc_role=ccsync_pc_reception -v app_role=practice_app -f grants.sql
--   on a PC, the application's role only (no node, no pc_role):
--     psql "dbname=practice" -v app_role=practice_app -f grants.sql
--
-- What each grants is stated in the function's own file: ccsync.grant_pc (sql/functions/ccsync.grant_pc.sql:
-- a PC's role reads the journal and ccsync's replicated tables, reads and writes the tracked tables, and
-- keeps its own bookkeeping through ccsync's functions, which take the node from the role; it writes no
-- ccsync table itself) and ccsync.grant_tables (the tracked tables, their schemas and sequences). An
-- application role gets the tracked tables and nothing on schema ccsync: the capture triggers run as the
-- schema owner, and nothing it sets switches them off. Everything is revoked from PUBLIC by `ccsync install`
-- (sql/privileges.sql). Running this again changes nothing.
\set ON_ERROR_STOP on
\if :{?node}
select ccsync.pc_add(:'node', :'pc_role');
\endif
\if :{?app_role}
select ccsync.grant_app(:'app_role');
\endif
