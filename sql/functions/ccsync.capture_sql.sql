-- ----------------------------------------------------------------------
-- Function: ccsync.capture_sql(6)
--
--      The statement that journals what one statement did to a table,
--      run inside its capture trigger (the transition tables cc_new,
--      cc_old): every row the statement changed, with full row images in
--      canonical form (ccsync.row_image_sql) and one clock value for the
--      statement (p_hlc: by default ccsync.hlc_next in a subquery,
--      evaluated once, and only if a row is journaled; the generated
--      capture function passes the value it took with a plain PL/pgSQL
--      assignment, cheaper than the subquery, and so takes one for a
--      statement that journals nothing too); an update's old and new rows are paired by position, and
--      an update that changes nothing journals nothing. A table whose
--      columns are all of the types ccsync.value_sql takes as they are (and
--      none virtual) has its images made by to_jsonb(row): the same JSON as
--      jsonb_build_object of every column, at half its cost in bulk. An
--      update is told from a no-op first by comparing its images as jsonb
--      (different jsonb always print differently), and only when they are
--      equal as their text (numeric 1.0 -> 1.00 is a change). A TRUNCATE on a
--      node keeps, in the entry's old image, the node's pull position
--      ({"pulled": snapshot}): what of the cloud it had, so that the push
--      empties on the cloud only the rows the node had. The generated
--      capture function holds it written out for the table as tracked; the
--      same function runs it, written from the catalog as it is now, for a
--      table altered since (ccsync.capture_function_sql).
--
-- Parameters:
--      p_table    the table
--      p_name     its qualified name as journaled (ccsync.tracked.table_name)
--      p_op       tg_op: INSERT, UPDATE, DELETE or TRUNCATE
--      p_origin   the SQL expression of the origin (v_origin, $1)
--      p_depth    the SQL expression of the depth (v_depth, $2)
--      p_hlc      the SQL expression of the statement's clock value
--                 (default: ccsync.hlc_next() in a subquery; TRUNCATE takes
--                 its own)
--
-- Returns:
--      text: an INSERT into ccsync.journal
--
-- Tables:
--      pg_attribute, pg_index (read, through ccsync.row_image_sql); the
--      statement reads ccsync.state (TRUNCATE)
-- ----------------------------------------------------------------------
-- its five-parameter form (revisions 0010 to 0014) goes first: beside this one, whose sixth parameter has a
-- default, a call with five arguments would be ambiguous (every revision's load_functions loads this file)
drop function if exists ccsync.capture_sql(regclass, text, text, text, text);
create or replace function ccsync.capture_sql(p_table regclass, p_name text, p_op text, p_origin text, p_depth text,
                                              p_hlc text default '(select ccsync.hlc_next())')
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select case p_op
        when 'INSERT' then format(
            'insert into ccsync.journal (hlc, origin, table_name, op, pk, new, depth)
        select %6$s, %1$s, %2$L, ''I'', %3$s, %4$s, %5$s
          from cc_new as n',
            p_origin, p_name, ccsync.row_image_sql(p_table, 'n', true),
            case when w.whole then 'to_jsonb(n.*)' else ccsync.row_image_sql(p_table, 'n') end, p_depth, p_hlc)
        when 'UPDATE' then format(
            'insert into ccsync.journal (hlc, origin, table_name, op, pk, old, new, depth)
        select %7$s, %1$s, %2$L, ''U'', o.k, o.i, n.i, %5$s
          from (select row_number() over () as p, %3$s as k, %4$s as i from cc_old as o) as o
          join (select row_number() over () as p, %6$s as i from cc_new as n) as n on n.p = o.p
         where (o.i <> n.i or o.i::text <> n.i::text)',
            p_origin, p_name, ccsync.row_image_sql(p_table, 'o', true),
            case when w.whole then 'to_jsonb(o.*)' else ccsync.row_image_sql(p_table, 'o') end, p_depth,
            case when w.whole then 'to_jsonb(n.*)' else ccsync.row_image_sql(p_table, 'n') end, p_hlc)
        when 'DELETE' then format(
            'insert into ccsync.journal (hlc, origin, table_name, op, pk, old, depth)
        select %6$s, %1$s, %2$L, ''D'', %3$s, %4$s, %5$s
          from cc_old as o',
            p_origin, p_name, ccsync.row_image_sql(p_table, 'o', true),
            case when w.whole then 'to_jsonb(o.*)' else ccsync.row_image_sql(p_table, 'o') end, p_depth, p_hlc)
        else format(
            'insert into ccsync.journal (hlc, origin, table_name, op, old, depth)
        values (ccsync.hlc_next(), %1$s, %2$L, ''T'',
                (select jsonb_build_object(''pulled'', s.pull_snapshot::text) from ccsync.state as s
                  where s.pull_snapshot is not null), %3$s)',
            p_origin, p_name, p_depth)
    end
      -- the whole row is the image: every column is taken as it is (ccsync.value_sql) and none is virtual
      -- (PostgreSQL 18: not in a transition table's image); dropped columns are left out by to_jsonb too
      from (select not exists (select 1 from pg_attribute as a
                                where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
                                  and (a.attgenerated = 'v'
                                       or ccsync.value_sql(a.atttypid::regtype, 'x') <> 'x')) as whole) as w
$$;
