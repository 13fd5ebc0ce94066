-- The privileges on ccsync's objects, applied after every load of the functions (by each revision, last in
-- install.sql), as PgQ's install.sql ends with its grants. Nobody but the schema owner uses ccsync's schema,
-- tables and functions unless granted here: the roles registered in ccsync.nodes (PCs, see
-- ccsync.grant_pc) and ccsync.app_roles (applications, see ccsync.grant_app) get their grants again, so
-- that the functions a new revision adds reach them. The capture triggers need no grant: a trigger runs its
-- function whoever writes the table, and the function runs as its owner (SECURITY DEFINER).
revoke all on schema ccsync from public;
revoke all on all tables in schema ccsync from public;
revoke all on all sequences in schema ccsync from public;
revoke all on all functions in schema ccsync from public;
select ccsync.regrant();
