-- ----------------------------------------------------------------------
-- Function: ccsync.insert_conflict(13)
--
--      Internal: the one way a record enters ccsync.conflicts on the
--      cloud, for the calling node (record_conflict and record_refusal
--      call it). The record is journaled as a cloud change
--      (ccsync.conflicts is one of ccsync's own replicated tables), so
--      every node pulls it. Not granted to anyone: the functions that
--      call it check what a PC may record.
--
-- Parameters:
--      p_table       the table of the (first) change
--      p_pk          that change's key
--      p_kind        update_update, update_delete, delete_update,
--                    insert_insert, refused
--      p_columns     the conflicting columns ('{}' for none)
--      p_local_row   the node's version (NULL: deleted there, or none)
--      p_cloud_row   the cloud's version (NULL: deleted here, or none)
--      p_base        the values the node's change was made on
--      p_diff        deepdiff of the local against the cloud version
--      p_local_hlc   the node's change's clock value
--      p_cloud_hlc   the cloud's latest change of the row's clock value
--      p_resolution  a policy's automatic resolution, or NULL (open)
--      p_reason      a refusal's reason (JSON text), or NULL
--      p_changes     a refused transaction's entries in order, or NULL
--
-- Returns:
--      bigint: the record's id
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.conflicts (insert)
-- ----------------------------------------------------------------------
create or replace function ccsync.insert_conflict(p_table text, p_pk jsonb, p_kind text, p_columns text[],
                                                  p_local_row jsonb, p_cloud_row jsonb, p_base jsonb, p_diff jsonb,
                                                  p_local_hlc bigint, p_cloud_hlc bigint, p_resolution text,
                                                  p_reason text, p_changes jsonb)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.require_node();
    v_id   bigint;
begin
    insert into ccsync.conflicts as c (node, table_name, pk, kind, columns, local_row, cloud_row, base, diff,
                                       local_hlc, cloud_hlc, status, resolution, resolved_by, resolved_at,
                                       reason, changes)
    values (v_node, p_table, p_pk, p_kind, p_columns, p_local_row, p_cloud_row, p_base, p_diff,
            p_local_hlc, p_cloud_hlc,
            case when p_resolution is null then 'open' else 'resolved' end, p_resolution,
            case when p_resolution is null then null else 'policy' end,
            case when p_resolution is null then null else now() end,
            p_reason, p_changes)
    returning c.id into v_id;
    return v_id;
end;
$$;
