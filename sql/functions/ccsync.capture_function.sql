-- ----------------------------------------------------------------------
-- Function: ccsync.capture_function(1)
--
--      The name of the capture trigger function ccsync.track generates for
--      a table (one per tracked table, see ccsync.capture_function_sql).
--
-- Parameters:
--      p_table_name   the table's qualified name, as in ccsync.tracked
--
-- Returns:
--      text: the function's qualified name, quoted
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_function(p_table_name text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select format('ccsync.%I', 'capture_' || left(md5(p_table_name), 16))
$$;
