-- ----------------------------------------------------------------------
-- Function: ccsync.untrack(1)
--
--      Stops capturing the changes of a table: drops its capture triggers
--      and forgets it. Journal entries already made stay in the journal.
--
-- Parameters:
--      p_table_name    the qualified name as stored in ccsync.tracked
--
-- Returns:
--      boolean: true when the table was tracked
--
-- Tables:
--      ccsync.tracked (delete)
-- ----------------------------------------------------------------------
create or replace function ccsync.untrack(p_table_name text)
returns boolean
language plpgsql
as $$
declare
    v_t ccsync.tracked;
begin
    delete from ccsync.tracked where table_name = p_table_name returning * into v_t;
    if not found then
        return false;
    end if;
    if to_regclass(p_table_name) is not null then
        execute format('drop trigger if exists ccsync_capture_row on %I.%I', v_t.schema_name, v_t.rel_name);
        execute format('drop trigger if exists ccsync_capture_insert on %I.%I', v_t.schema_name, v_t.rel_name);
        execute format('drop trigger if exists ccsync_capture_truncate on %I.%I', v_t.schema_name, v_t.rel_name);
    end if;
    return true;
end;
$$;
