-- ----------------------------------------------------------------------
-- Function: ccsync.push_position(0)
--
--      The calling node's push position, locked (FOR UPDATE) in the push
--      transaction: the node's snapshot up to which its transactions are
--      applied on the cloud, the window being applied and how far.
--
-- Returns:
--      one row (push_snapshot, push_window, push_done_upto), none when
--      the node has not run `ccsync init`
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.nodes (read, row lock)
-- ----------------------------------------------------------------------
create or replace function ccsync.push_position()
returns table (push_snapshot text, push_window text, push_done_upto bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_node text := ccsync.require_node();
begin
    return query
        select n.push_snapshot::text, n.push_window::text, n.push_done_upto
          from ccsync.nodes as n
         where n.name = v_node and n.push_snapshot is not null
           for update;
end;
$$;
