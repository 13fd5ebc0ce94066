-- ----------------------------------------------------------------------
-- Function: ccsync.capture_insert(trigger)
--
--      AFTER INSERT statement trigger of a tracked table, with the new
--      rows in the transition table ccsync_new: journals every inserted
--      row (the whole row) in one set-based statement, which keeps bulk
--      inserts close to the speed of an untracked table.
--
-- Trigger arguments: as ccsync.capture_row (identity, internal, n, pk
--      columns, json columns).
--
-- Origin rule: as ccsync.capture_row.
--
-- Speed: each row is turned into jsonb once (the "offset 0" keeps the
--      planner from copying that expression into both uses of it), and
--      with a one-column primary key the key is taken from that jsonb
--      without reading the catalog.
--
-- Tables:
--      ccsync.journal (insert), pg_attribute (read, for a composite key)
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_origin text := ccsync.capture_origin(tg_argv[0], tg_argv[1]::boolean);
    v_npk    integer := tg_argv[2]::integer;
    v_pkcols text[] := tg_argv[3:v_npk + 2];
    v_json   text[] := tg_argv[v_npk + 3:tg_nargs - 1];
    v_table  text := format('%I.%I', tg_table_schema, tg_table_name);
    v_pk1    text := tg_argv[3];
    v_nonpk  text[];
begin
    if v_origin is null then
        return null;
    end if;
    if v_npk = 1 then
        insert into ccsync.journal (hlc, origin, table_name, op, pk, new)
        select ccsync.hlc_next(), v_origin, v_table, 'I',
               jsonb_build_object(v_pk1, s.r -> v_pk1), s.r
          from (select case when v_json = '{}' then to_jsonb(ccsync_new.*)
                            else ccsync.json_as_text(to_jsonb(ccsync_new.*), row_to_json(ccsync_new.*), v_json)
                       end as r
                  from ccsync_new
                offset 0) as s;
        return null;
    end if;
    select coalesce(array_agg(a.attname::text), '{}')
      into v_nonpk
      from pg_attribute as a
     where a.attrelid = tg_relid
       and a.attnum > 0
       and not a.attisdropped
       and a.attname::text <> all (v_pkcols);
    insert into ccsync.journal (hlc, origin, table_name, op, pk, new)
    select ccsync.hlc_next(), v_origin, v_table, 'I', s.r - v_nonpk, s.r
      from (select case when v_json = '{}' then to_jsonb(ccsync_new.*)
                        else ccsync.json_as_text(to_jsonb(ccsync_new.*), row_to_json(ccsync_new.*), v_json)
                   end as r
              from ccsync_new
            offset 0) as s;
    return null;
end;
$$;
