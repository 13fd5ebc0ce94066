-- ----------------------------------------------------------------------
-- Function: ccsync.untrack(1)
--
--      Stops capturing the changes of a table: drops its capture triggers
--      and function and forgets it. Journal entries already made stay in
--      the journal.
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
    v_t       ccsync.tracked;
    v_trigger text;
begin
    delete from ccsync.tracked where table_name = p_table_name returning * into v_t;
    if not found then
        return false;
    end if;
    if to_regclass(p_table_name) is not null then
        foreach v_trigger in array array['ccsync_capture_row', 'ccsync_capture_insert', 'ccsync_capture_update',
                                         'ccsync_capture_delete', 'ccsync_capture_truncate'] loop
            execute format('drop trigger if exists %I on %I.%I', v_trigger, v_t.schema_name, v_t.rel_name);
        end loop;
    end if;
    execute format('drop function if exists %s()', ccsync.capture_function(p_table_name));
    return true;
end;
$$;
