-- ----------------------------------------------------------------------
-- Function: ccsync.canonical_sql(2)
--
--      The SQL expression that rewrites a row image (or key) of p_table in
--      the form revisions up to 0007 journaled it (to_jsonb of the row in
--      the writing session's settings; json columns as their text; arrays as
--      JSON arrays; composites and hstore as objects) into the canonical
--      form of ccsync.value_sql, column by column. Keys that are not columns
--      (any more) keep their value; NULL stays NULL. Used once, by the
--      upgrade to revision 0008 (ccsync.convert_images), with the capture
--      settings.
--
-- Parameters:
--      p_table   the table
--      p_image   a jsonb expression
--
-- Returns:
--      text: a jsonb expression
--
-- Tables:
--      pg_attribute, pg_type (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.canonical_sql(p_table regclass, p_image text)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select format('(select jsonb_object_agg(e.key, case e.key %s else e.value end) from jsonb_each(%s) as e)',
                  string_agg(format('when %L then %s', a.attname, c.conv), ' ' order by a.attnum), p_image)
      from pg_attribute as a
      join pg_type as t on t.oid = a.atttypid
      cross join lateral (select format_type(a.atttypid, a.atttypmod) as type) as ty
      cross join lateral (
          select case
                     when a.atttypid = 'json'::regtype then 'e.value'
                     when a.atttypid = 'jsonb'::regtype
                         then 'case when jsonb_typeof(e.value) = ''null'' then e.value else to_jsonb(e.value::text) end'
                     when ccsync.value_sql(a.atttypid::regtype, 'x') = 'x'
                         then format('case when jsonb_typeof(e.value) = ''null'' then e.value '
                                     'else to_jsonb((e.value #>> ''{}'')::%s) end', ty.type)
                     when t.typname = 'hstore'
                         then format('case jsonb_typeof(e.value) when ''null'' then e.value when ''object'' then '
                                     'to_jsonb(((select coalesce(string_agg(format(''"%%s"=>%%s'', '
                                     'replace(replace(h.key, ''\'', ''\\''), ''"'', ''\"''), '
                                     'coalesce(''"'' || replace(replace(h.value, ''\'', ''\\''), ''"'', ''\"'') || ''"'', '
                                     '''NULL'')), '', ''), '''') from jsonb_each_text(e.value) as h))::%1$s)::text) '
                                     'else to_jsonb(((e.value #>> ''{}'')::%1$s)::text) end', ty.type)
                     else format('case jsonb_typeof(e.value) when ''null'' then e.value '
                                 'when ''array'' then to_jsonb(((jsonb_populate_record(null::%1$s, '
                                 'jsonb_build_object(%2$L, e.value))).%3$I)::text) '
                                 'when ''object'' then to_jsonb(((jsonb_populate_record(null::%1$s, '
                                 'jsonb_build_object(%2$L, e.value))).%3$I)::text) '
                                 'else to_jsonb(((e.value #>> ''{}'')::%4$s)::text) end',
                                 p_table, a.attname, a.attname, ty.type)
                 end as conv) as c
     where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
$$;
