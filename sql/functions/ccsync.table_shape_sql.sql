-- ----------------------------------------------------------------------
-- Function: ccsync.table_shape_sql(1)
--
--      The query of a table's shape: the name and type of each of its
--      columns, in order, as one text. A generated capture function
--      (ccsync.capture_function_sql) runs it once per statement and
--      compares the result with the shape the table had when it was
--      tracked: any ALTER TABLE that adds, drops or renames a column or
--      changes its type changes the shape. One index scan of
--      pg_attribute.
--
-- Parameters:
--      p_relid   the SQL expression of the table's oid (e.g. tg_relid, $1)
--
-- Returns:
--      text: a scalar subquery of type text, to run with search_path =
--      pg_catalog, pg_temp (as the capture functions do)
--
-- Tables:
--      pg_attribute (read, by the query)
-- ----------------------------------------------------------------------
create or replace function ccsync.table_shape_sql(p_relid text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select format('(select string_agg(a.attname || '':'' || a.atttypid, '','' order by a.attnum) '
                  'from pg_catalog.pg_attribute as a where a.attrelid = %s and a.attnum > 0 and not a.attisdropped)',
                  p_relid)
$$;
