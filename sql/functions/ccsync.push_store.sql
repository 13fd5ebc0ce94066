-- ----------------------------------------------------------------------
-- Function: ccsync.push_store(3)
--
--      Moves the calling node's push position, in the push transaction
--      that applied the chunk it covers (exactly once).
--
-- Parameters:
--      p_upto       the window's upper snapshot (the node's)
--      p_last       the window is applied: p_upto becomes the position
--      p_done_upto  otherwise: the highest journal id of the last applied
--                   transaction of the window
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.nodes (update of the caller's row)
-- ----------------------------------------------------------------------
create or replace function ccsync.push_store(p_upto pg_snapshot, p_last boolean, p_done_upto bigint)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.require_node();
begin
    update ccsync.nodes
       set push_snapshot  = case when p_last then p_upto else push_snapshot end,
           push_window    = case when p_last then null else p_upto end,
           push_done_upto = case when p_last then null else p_done_upto end,
           last_push_at   = now()
     where name = v_node;
end;
$$;
