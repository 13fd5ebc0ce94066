-- ----------------------------------------------------------------------
-- Function: ccsync.report_pulled(1)
--
--      Records how far the calling node has pulled, so that the cloud may
--      prune the journal entries every node has (ccsync.prune).
--
-- Parameters:
--      p_snapshot   the node's pull position (a cloud snapshot)
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.nodes (update of the caller's row)
-- ----------------------------------------------------------------------
create or replace function ccsync.report_pulled(p_snapshot pg_snapshot)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.require_node();
begin
    update ccsync.nodes set pulled_snapshot = p_snapshot, last_pull_at = now() where name = v_node;
end;
$$;
