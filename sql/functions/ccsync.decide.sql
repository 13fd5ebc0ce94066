-- ----------------------------------------------------------------------
-- Function: ccsync.decide(3)
--
--      A person's decision on a record, as the push of the node where it
--      was made brings it: the node updated its record (status,
--      resolution, who, when, the row kept, a new decision id) in the
--      same transaction as the values it chose. Each record takes one
--      decision: the first to reach the cloud is applied, stamped with
--      the deciding node (decided_on: the node of the connected role),
--      and kept in ccsync.decisions. A later decision is applied only as
--      a revisit of the decision in force (the node's record had that
--      decision when it decided again): a new decision, audited the same
--      way. Any other decision (two PCs deciding one record meanwhile) is
--      refused with SQLSTATE 23C01: the push refuses the whole source
--      transaction (the decision and the values it wrote), and the node
--      gets it back as a refused record of its own.
--
-- Parameters:
--      p_conflict_id  the record
--      p_decision     the node's image of the record after its decision
--                     (status, resolution, resolved_by, resolved_at,
--                     resolved_row, decision are read)
--      p_before       the node's image of the changed fields before it
--                     (status and decision are read)
--
-- Returns:
--      boolean: true (a refusal raises)
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--      23C01  the record was decided meanwhile (integrity class: refused)
--      23C02  no such record on the cloud
--
-- Tables:
--      ccsync.conflicts (update), ccsync.decisions (insert)
-- ----------------------------------------------------------------------
create or replace function ccsync.decide(p_conflict_id bigint, p_decision jsonb, p_before jsonb)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node     text := ccsync.require_node();
    v_c        record;
    -- the node's update carries the fields it changed (old and new): a field it did not change kept its value
    v_before   text := case when p_before ? 'status' then p_before ->> 'status' else 'resolved' end;
    v_after    text := coalesce(p_decision ->> 'status', v_before);
    v_decision uuid := coalesce((p_decision ->> 'decision')::uuid, gen_random_uuid());
    v_seen     uuid := (p_before ->> 'decision')::uuid;
    v_row      jsonb;
begin
    select c.status, c.decision, c.resolution, c.resolved_by, c.resolved_at, c.resolved_row into v_c
      from ccsync.conflicts as c where c.id = p_conflict_id for update;
    if not found then
        raise exception 'record % does not exist on the cloud', p_conflict_id using errcode = '23C02';
    end if;
    if v_after <> 'resolved' then
        raise exception 'record %: a decision can only close it', p_conflict_id using errcode = '23C01';
    end if;
    if not ((v_c.status = 'open' and v_before = 'open')
            or (v_c.status = 'resolved' and v_before = 'resolved' and v_seen is not distinct from v_c.decision)) then
        raise exception 'record % was already decided (%) by % at %: this decision was not applied',
            p_conflict_id, v_c.resolution, v_c.resolved_by,
            to_char(v_c.resolved_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
            using errcode = '23C01';
    end if;
    v_row := case when not p_decision ? 'resolved_row' then v_c.resolved_row
                  when jsonb_typeof(p_decision -> 'resolved_row') = 'string' then (p_decision #>> '{resolved_row}')::jsonb
                  when jsonb_typeof(p_decision -> 'resolved_row') = 'null' then null
                  else p_decision -> 'resolved_row' end;
    update ccsync.conflicts
       set status = 'resolved',
           resolution = coalesce(p_decision ->> 'resolution', v_c.resolution),
           resolved_by = coalesce(p_decision ->> 'resolved_by', v_c.resolved_by),
           resolved_at = coalesce((p_decision ->> 'resolved_at')::timestamptz, v_c.resolved_at, now()),
           decided_on = v_node,
           resolved_row = v_row,
           decision = v_decision
     where id = p_conflict_id
    returning resolution, resolved_by, resolved_at into v_c.resolution, v_c.resolved_by, v_c.resolved_at;
    insert into ccsync.decisions (id, conflict_id, decided_on, resolution, resolved_by, resolved_at, resolved_row,
                                  revisit_of)
    values (v_decision, p_conflict_id, v_node, v_c.resolution, v_c.resolved_by, v_c.resolved_at, v_row,
            case when v_before = 'resolved' then v_seen end);
    return true;
end;
$$;
