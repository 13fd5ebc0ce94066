-- ----------------------------------------------------------------------
-- Function: ccsync.convert_images(0)
--
--      The upgrade to revision 0008: rewrites every row image and key that
--      revisions up to 0007 wrote into the canonical form (see
--      ccsync.canonical_sql), so that what is still pending on a PC or not
--      yet pulled from the cloud applies exactly: the journal (pk, old,
--      new), the conflict records (pk, local_row, cloud_row, base,
--      resolved_row) and the rows waiting for a refresh (pk). Images of a
--      table that is no longer tracked, or that cannot be read as the table
--      now is, stay as they were (a warning names the table): applying them
--      then fails with a clear error and they stay pending, never misapplied
--      in silence. An update's image keeps the columns it had (the changed
--      ones): readers take the changed columns from old against new, which
--      holds for both forms.
--
-- Returns:
--      bigint: the journal entries rewritten
--
-- Tables:
--      ccsync.journal, ccsync.conflicts, ccsync.refresh (update)
-- ----------------------------------------------------------------------
create or replace function ccsync.convert_images()
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set datestyle = 'ISO, YMD'
set intervalstyle = 'postgres'
set extra_float_digits = 3
set bytea_output = 'hex'
set lc_monetary = 'C'
as $$
declare
    v_t     record;
    v_rel   regclass;
    v_count bigint := 0;
    v_n     bigint;
begin
    execute 'alter table ccsync.conflicts disable trigger user';  -- rewritten in place, not replicated
    for v_t in select t.table_name from ccsync.tracked as t order by t.table_name loop
        v_rel := to_regclass(v_t.table_name);
        if v_rel is null then
            continue;
        end if;
        begin
            execute format('update ccsync.journal set pk = %s, old = %s, new = %s where table_name = %L',
                           ccsync.canonical_sql(v_rel, 'pk'), ccsync.canonical_sql(v_rel, 'old'),
                           ccsync.canonical_sql(v_rel, 'new'), v_t.table_name);
            get diagnostics v_n = row_count;
            v_count := v_count + v_n;
        exception when others then
            raise warning 'ccsync: the journal entries of % stay in their former form (%): they will be refused, '
                          'not misapplied, if they do not fit the table any more', v_t.table_name, sqlerrm;
        end;
        begin
            execute format('update ccsync.conflicts set pk = %s, local_row = %s, cloud_row = %s, base = %s, '
                           'resolved_row = %s where table_name = %L',
                           ccsync.canonical_sql(v_rel, 'pk'), ccsync.canonical_sql(v_rel, 'local_row'),
                           ccsync.canonical_sql(v_rel, 'cloud_row'), ccsync.canonical_sql(v_rel, 'base'),
                           ccsync.canonical_sql(v_rel, 'resolved_row'), v_t.table_name);
        exception when others then
            raise warning 'ccsync: the conflict records of % stay in their former form (%)', v_t.table_name, sqlerrm;
        end;
        begin  -- two spellings of one key become one
            execute format('with f as (delete from ccsync.refresh where table_name = %L returning pk) '
                           'insert into ccsync.refresh (table_name, pk) select distinct %L, %s from f '
                           'on conflict do nothing',
                           v_t.table_name, v_t.table_name, ccsync.canonical_sql(v_rel, 'f.pk'));
        exception when others then
            raise warning 'ccsync: the rows of % waiting for a refresh stay in their former form (%)',
                v_t.table_name, sqlerrm;
        end;
    end loop;
    execute 'alter table ccsync.conflicts enable trigger user';
    return v_count;
end;
$$;
