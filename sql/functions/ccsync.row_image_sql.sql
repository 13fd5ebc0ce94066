-- ----------------------------------------------------------------------
-- Function: ccsync.row_image_sql(2)
--
--      The SQL expression of a row's image as the journal holds it, for a
--      row of p_table named p_alias in a query: what ccsync's functions
--      and the reconciler read a current row with, so that it compares
--      with the images the capture triggers write.
--
-- Parameters:
--      p_table   the table
--      p_alias   the row's alias in the query
--
-- Returns:
--      text: an expression of type jsonb (identifiers quoted)
--
-- Tables:
--      pg_attribute (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.row_image_sql(p_table regclass, p_alias text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select case when j.cols is null then format('to_jsonb(%I.*)', p_alias)
                else format('ccsync.json_as_text(to_jsonb(%I.*), row_to_json(%I.*), %L::text[])', p_alias, p_alias, j.cols)
           end
      from (select array_agg(a.attname::text order by a.attnum) as cols
              from pg_attribute as a
             where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
               and a.atttypid = 'json'::regtype) as j
$$;
