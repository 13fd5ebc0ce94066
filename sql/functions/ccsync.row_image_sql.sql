-- ----------------------------------------------------------------------
-- Function: ccsync.row_image_sql(3)
--
--      The SQL expression of a row's image as the journal holds it: every
--      stored column (or the primary key's only) in its canonical form
--      (ccsync.value_sql), written out from the catalog once, so that the
--      capture triggers and whoever reads a current row (ccsync's functions,
--      the reconciler) build the same image without reading the catalog per
--      row. Run with the capture settings (see ccsync.value_sql).
--
-- Parameters:
--      p_table   the table
--      p_alias   the row's alias in the query
--      p_key     true: the primary key's columns only
--
-- Returns:
--      text: an expression of type jsonb (identifiers quoted); groups of 50
--      columns are concatenated (jsonb_build_object takes 100 arguments)
--
-- Tables:
--      pg_attribute, pg_index (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.row_image_sql(p_table regclass, p_alias text, p_key boolean default false)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(string_agg(g.part, ' || ' order by g.n), '''{}''::jsonb')
      from (select c.n, format('jsonb_build_object(%s)', string_agg(c.pair, ', ' order by c.attnum)) as part
              from (select a.attnum, (row_number() over (order by a.attnum) - 1) / 50 as n,
                           format('%L, %s', a.attname, ccsync.value_sql(a.atttypid::regtype,
                                                                        format('%I.%I', p_alias, a.attname))) as pair
                      from pg_attribute as a
                     where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
                       and a.attgenerated <> 'v'  -- virtual (PostgreSQL 18): not stored, nor in a transition table
                       and (not p_key or a.attnum = any ((select i.indkey::int2[] from pg_index as i
                                                           where i.indrelid = p_table and i.indisprimary)::int2[]))
                   ) as c
             group by c.n) as g
$$;
