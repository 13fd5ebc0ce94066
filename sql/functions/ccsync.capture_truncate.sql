-- ----------------------------------------------------------------------
-- Function: ccsync.capture_truncate(trigger)
--
--      BEFORE TRUNCATE statement trigger of a tracked table: journals the
--      TRUNCATE (op 'T'), so that it is replayed, never silently missed.
--
-- Trigger arguments:
--      tg_argv[0]      identity of this database ('cloud' or the node name)
--      tg_argv[1]      't' for ccsync's own replicated tables, else 'f'
--
-- Origin rule: as ccsync.capture_row.
--
-- Tables:
--      ccsync.journal (insert)
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_truncate()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_origin text := ccsync.capture_origin(tg_argv[0], tg_argv[1]::boolean);
begin
    if v_origin is null then
        return null;
    end if;
    insert into ccsync.journal (hlc, origin, table_name, op)
    values (ccsync.hlc_next(), v_origin,
            format('%I.%I', tg_table_schema, tg_table_name), 'T');
    return null;
end;
$$;
