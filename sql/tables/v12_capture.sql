-- ccsync tables, revision 0012, after its functions are loaded: capture of tables with a virtual generated column.
--
-- A virtual generated column (PostgreSQL 18) is not stored, and reading it from a transition table fails: with
-- revision 0008 every write of such a table failed. ccsync.row_image_sql leaves it out now; the tables that have
-- one get their capture function again.

select ccsync.track(format('%I.%I', t.schema_name, t.rel_name)::regclass, t.policy, t.schema_name = 'ccsync')
  from ccsync.tracked as t
 where exists (select 1 from pg_attribute as a
                where a.attrelid = format('%I.%I', t.schema_name, t.rel_name)::regclass
                  and a.attgenerated = 'v' and not a.attisdropped)
 order by t.table_name;
