-- ----------------------------------------------------------------------
-- Function: ccsync.record_conflict(11)
--
--      Records, for the calling node, a conflict its push met: one record
--      per conflicting change (a second conflict on a row never overwrites
--      the first), through ccsync.insert_conflict, so every node pulls it.
--
-- Parameters:
--      p_table       the tracked table, as in ccsync.tracked
--      p_pk          the row's key
--      p_kind        update_update, update_delete, delete_update, insert_insert
--      p_columns     the conflicting columns
--      p_local_row   the node's version (NULL: deleted there)
--      p_cloud_row   the cloud's version (NULL: deleted here)
--      p_base        the values the node's change was made on
--      p_diff        deepdiff of the local against the cloud version
--      p_local_hlc   the node's change's clock value
--      p_cloud_hlc   the cloud's latest change of the row's clock value
--      p_resolution  the policy's automatic resolution, or NULL (open)
--
-- Returns:
--      bigint: the record's id
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--      CC013  the table is not tracked
--
-- Tables:
--      ccsync.conflicts (insert, by ccsync.insert_conflict), ccsync.tracked (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.record_conflict(p_table text, p_pk jsonb, p_kind text, p_columns text[],
                                                  p_local_row jsonb, p_cloud_row jsonb, p_base jsonb, p_diff jsonb,
                                                  p_local_hlc bigint, p_cloud_hlc bigint, p_resolution text)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform ccsync.require_node();  -- CC010 before CC013, as a PC's role is told first
    if not exists (select 1 from ccsync.tracked as t where t.table_name = p_table) then
        raise exception '% is not tracked on the cloud', p_table using errcode = 'CC013';
    end if;
    return ccsync.insert_conflict(p_table, p_pk, p_kind, p_columns, p_local_row, p_cloud_row, p_base, p_diff,
                                  p_local_hlc, p_cloud_hlc, p_resolution, null, null);
end;
$$;
