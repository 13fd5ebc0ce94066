-- ----------------------------------------------------------------------
-- Function: ccsync.node_leave(0)
--
--      The calling node leaves the cloud's register (its ccsync is being
--      uninstalled): the cloud stops keeping its journal for it, and its
--      role loses what ccsync.grant_pc gave it. Its conflicts stay, for a
--      person to decide. Installed again, the PC needs `ccsync pc add`.
--
-- Returns:
--      boolean: true when the node was registered
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.nodes (delete of the caller's row)
-- ----------------------------------------------------------------------
create or replace function ccsync.node_leave()
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.require_node();
    v_role name;
begin
    delete from ccsync.nodes where name = v_node returning role into v_role;
    if not found then
        return false;
    end if;
    if v_role is not null then
        perform ccsync.revoke_pc(v_role);
    end if;
    return true;
end;
$$;
