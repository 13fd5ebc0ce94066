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
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text;
begin
    -- (PL/pgSQL keeps its plan for the session: a capture trigger on the cloud calls this once per statement)
    select n.name into v_node from ccsync.nodes as n where n.role = session_user;
    if v_node is null and coalesce(current_setting('ccsync.origin', true), '') <> '' and ccsync.trusted_session() then
        v_node := current_setting('ccsync.origin', true);
    end if;
    return v_node;
end;
$$;
