-- ----------------------------------------------------------------------
-- Function: ccsync.caller_node(0)
--
--      The node the connected role acts for, on the cloud: the node whose
--      registered role (ccsync.nodes.role, set by `ccsync pc add`) is the
--      session's login role (session_user: SET ROLE changes nothing). A
--      trusted session (ccsync.trusted_session: a superuser or the schema
--      owner, the one-role setup) acts for the node named by its setting
--      ccsync.origin. Every function a PC calls on the cloud takes the
--      node from here, never from an argument.
--
-- Returns:
--      text: the node's name, or NULL (the application, a DBA, a role
--      registered to no node)
--
-- Tables:
--      ccsync.nodes (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.caller_node()
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(
        (select n.name from ccsync.nodes as n where n.role = session_user),
        (select o.origin
           from (select nullif(current_setting('ccsync.origin', true), '') as origin) as o
          where o.origin is not null and ccsync.trusted_session()))
$$;
