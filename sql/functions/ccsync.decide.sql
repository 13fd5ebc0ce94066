-- ----------------------------------------------------------------------
-- Function: ccsync.decide(2)
--
--      A person's decision on a conflict, as the push of the node where it
--      was made brings it: the node resolved the record locally (status,
--      resolution, who, when, the row kept) and the decision is applied
--      here if the conflict is still open, with the deciding node stamped
--      by the cloud (decided_on: the node of the connected role, whatever
--      the record says). A decision on a conflict already decided changes
--      nothing, and the cloud's record is journaled back to the node (it
--      takes the cloud's version).
--
-- Parameters:
--      p_conflict_id  the conflict
--      p_decision     the node's image of the record after its decision
--                     (the keys status, resolution, resolved_by,
--                     resolved_at and resolved_row are read)
--
-- Returns:
--      boolean: true when the decision was applied
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--
-- Tables:
--      ccsync.conflicts (update), ccsync.journal (insert, see
--      ccsync.journal_for_node)
-- ----------------------------------------------------------------------
create or replace function ccsync.decide(p_conflict_id bigint, p_decision jsonb)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.require_node();
    v_c    ccsync.conflicts;
    v_row  jsonb := p_decision -> 'resolved_row';
begin
    select * into v_c from ccsync.conflicts as c where c.id = p_conflict_id for update;
    if found and v_c.status = 'open' and p_decision ->> 'status' = 'resolved' then
        update ccsync.conflicts
           set status = 'resolved',
               resolution = p_decision ->> 'resolution',
               resolved_by = p_decision ->> 'resolved_by',
               resolved_at = coalesce((p_decision ->> 'resolved_at')::timestamptz, now()),
               decided_on = v_node,
               resolved_row = case jsonb_typeof(v_row) when 'string' then (v_row #>> '{}')::jsonb
                                                       when 'null' then null
                                                       else v_row end
         where id = p_conflict_id;
        return true;
    end if;
    perform ccsync.journal_for_node('ccsync.conflicts', jsonb_build_object('id', p_conflict_id));
    return false;
end;
$$;
