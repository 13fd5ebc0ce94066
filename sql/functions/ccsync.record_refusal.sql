-- ----------------------------------------------------------------------
-- Function: ccsync.record_refusal(5)
--
--      Records, for the calling node, a source transaction of its push
--      that the cloud's constraints refused (issue 12, invariant 7): not
--      applied at all, kept whole for a person to discard or apply again:
--      a record of kind refused, through ccsync.insert_conflict, so every
--      node has it.
--
-- Parameters:
--      p_table     the table of the transaction's first change
--      p_pk        that change's key
--      p_changes   the transaction's journal entries in order:
--                  [{table, op, pk, old, new}, ...]
--      p_reason    why, in words: table and constraint names, no values
--      p_hlc       the transaction's highest clock value
--
-- Returns:
--      bigint: the record's id
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.conflicts (insert, by ccsync.insert_conflict)
-- ----------------------------------------------------------------------
create or replace function ccsync.record_refusal(p_table text, p_pk jsonb, p_changes jsonb, p_reason text,
                                                 p_hlc bigint)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return ccsync.insert_conflict(p_table, coalesce(p_pk, '{}'), 'refused', '{}', null, null, null, null, p_hlc, null,
                                  null, p_reason, p_changes);
end;
$$;
