-- ----------------------------------------------------------------------
-- Function: ccsync.journal_for_node(2)
--
--      Journals a row as the cloud now has it, for the calling node only
--      (target): after a conflict of that node, it takes the cloud's
--      whole row, including a row it had deleted. The image is read here,
--      from the table, never taken from the caller, in the canonical form
--      (the capture settings of ccsync.value_sql).
--
-- Parameters:
--      p_table   the tracked table, as in ccsync.tracked
--      p_pk      the row's key
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--      CC013  the table is not tracked
--
-- Tables:
--      ccsync.journal (insert), ccsync.tracked (read), the table (read);
--      notifies (ccsync.notify_journal)
-- ----------------------------------------------------------------------
create or replace function ccsync.journal_for_node(p_table text, p_pk jsonb)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set datestyle = 'ISO, YMD'
set intervalstyle = 'postgres'
set extra_float_digits = 3
set bytea_output = 'hex'
set lc_monetary = 'C'
as $$
declare
    v_node  text := ccsync.require_node();
    v_rel   regclass;
    v_image jsonb;
begin
    select format('%I.%I', t.schema_name, t.rel_name)::regclass into v_rel
      from ccsync.tracked as t
     where t.table_name = p_table;
    if v_rel is null then
        raise exception '% is not tracked on the cloud', p_table using errcode = 'CC013';
    end if;
    execute format('select %s from %s as t where %s',
                   ccsync.row_image_sql(v_rel, 't'), v_rel, ccsync.key_match_sql(v_rel, 't', '$1'))
       into v_image
      using p_pk;
    insert into ccsync.journal (hlc, origin, table_name, op, pk, new, target)
    values (ccsync.hlc_next(), 'cloud', p_table, case when v_image is null then 'D' else 'I' end, p_pk, v_image, v_node);
    perform ccsync.notify_journal();
end;
$$;
