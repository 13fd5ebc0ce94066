-- ----------------------------------------------------------------------
-- Function: ccsync.capture_truncate(trigger)
--
--      BEFORE TRUNCATE statement trigger of a tracked table: journals the
--      TRUNCATE (op 'T'), so that it is replayed, never silently missed.
--
-- Trigger arguments:
--      tg_argv[0]      identity of this database ('cloud' or the node name)
--
-- Origin rule: as ccsync.capture_row.
--
-- Tables:
--      ccsync.journal (insert)
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_truncate()
returns trigger
language plpgsql
as $$
declare
    v_self   text := tg_argv[0];
    v_origin text := nullif(current_setting('ccsync.origin', true), '');
begin
    if v_origin is not null and v_self <> 'cloud' then
        return null;
    end if;
    insert into ccsync.journal (hlc, origin, table_name, op)
    values (ccsync.hlc_next(), coalesce(v_origin, v_self),
            format('%I.%I', tg_table_schema, tg_table_name), 'T');
    return null;
end;
$$;
