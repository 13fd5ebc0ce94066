-- ----------------------------------------------------------------------
-- Function: ccsync.capture_row(trigger)
--
--      AFTER UPDATE OR DELETE row trigger of a tracked table: journals
--      the change. An update journals the old and new values of the
--      changed columns only (compared by their text form, so numeric
--      1.0 -> 1.00 is a change) and nothing when no column changed; the
--      primary key in the entry is the row's key before the change, so a
--      replica can follow a change of primary key. A delete journals the
--      whole old row (the base a conflict check needs).
--
-- Trigger arguments:
--      tg_argv[0]      identity of this database ('cloud' or the node name)
--      tg_argv[1]      't' for ccsync's own replicated tables, else 'f'
--      tg_argv[2]      n, the number of primary key columns
--      tg_argv[3..n+2] primary key columns
--      tg_argv[n+3..]  columns of type json, journaled as their exact text
--                      (a JSON string), since jsonb would reorder keys
--
-- Origin rule: ccsync.capture_origin (no echo on a node; the origin
--      stamped from the connected role on the cloud). Runs as its owner
--      (SECURITY DEFINER): any role that may write the table is captured.
--
-- Tables:
--      ccsync.journal (insert)
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_row()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_origin text  := ccsync.capture_origin(tg_argv[0], tg_argv[1]::boolean);
    v_npk    integer := tg_argv[2]::integer;
    v_old    jsonb := to_jsonb(old);
    v_new    jsonb;
    v_pk     jsonb := '{}';
    v_dold   jsonb;
    v_dnew   jsonb;
    i        integer;
begin
    if v_origin is null then
        return null;
    end if;
    if tg_nargs > v_npk + 3 then
        v_old := ccsync.json_as_text(v_old, row_to_json(old), tg_argv[v_npk + 3:tg_nargs - 1]);
    end if;
    for i in 3 .. v_npk + 2 loop
        v_pk := v_pk || jsonb_build_object(tg_argv[i], v_old -> tg_argv[i]);
    end loop;
    if tg_op = 'DELETE' then
        insert into ccsync.journal (hlc, origin, table_name, op, pk, old)
        values (ccsync.hlc_next(), v_origin,
                format('%I.%I', tg_table_schema, tg_table_name), 'D', v_pk, v_old);
        return null;
    end if;
    v_new := to_jsonb(new);
    if tg_nargs > v_npk + 3 then
        v_new := ccsync.json_as_text(v_new, row_to_json(new), tg_argv[v_npk + 3:tg_nargs - 1]);
    end if;
    select jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, v_new -> o.key)
      into v_dold, v_dnew
      from jsonb_each(v_old) as o
     where o.value::text is distinct from (v_new -> o.key)::text;
    if v_dnew is null then
        return null;
    end if;
    insert into ccsync.journal (hlc, origin, table_name, op, pk, old, new)
    values (ccsync.hlc_next(), v_origin,
            format('%I.%I', tg_table_schema, tg_table_name), 'U', v_pk, v_dold, v_dnew);
    return null;
end;
$$;
