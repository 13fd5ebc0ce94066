-- ----------------------------------------------------------------------
-- Function: ccsync.key_match_sql(3)
--
--      The SQL condition that a row of p_table named p_alias has the
--      primary key held, as the journal holds keys, in the jsonb
--      expression p_key: each key column compared with its value read back
--      by its type's input function ((p_key ->> 'col')::type).
--
-- Parameters:
--      p_table   the table
--      p_alias   the row's alias in the query
--      p_key     a jsonb expression, e.g. '$1'
--
-- Returns:
--      text: a boolean expression (identifiers quoted)
--
-- Tables:
--      pg_index, pg_attribute (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.key_match_sql(p_table regclass, p_alias text, p_key text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select string_agg(format('%I.%I = (%s ->> %L)::%s', p_alias, a.attname, p_key, a.attname,
                             format_type(a.atttypid, a.atttypmod)), ' and ' order by k.ord)
      from pg_index as i
      cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
      join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = p_table and i.indisprimary
$$;
