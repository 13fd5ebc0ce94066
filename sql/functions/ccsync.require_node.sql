-- ----------------------------------------------------------------------
-- Function: ccsync.require_node(0)
--
--      ccsync.caller_node(), or an error when the connected role acts for
--      no node: the first line of every function a PC calls on the cloud.
--
-- Returns:
--      text: the node's name
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.nodes (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.require_node()
returns text
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.caller_node();
begin
    if v_node is null then
        raise exception 'the role % is not registered to a node on the cloud: the cloud''s owner registers it with `ccsync pc add NODE --role %`',
            session_user, session_user
            using errcode = 'CC010';
    end if;
    return v_node;
end;
$$;
