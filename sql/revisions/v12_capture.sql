-- ccsync, revision 0012, after its functions are loaded: every capture function written again.
--
-- Overview
--   No table changes. Every tracked table's generated capture function is written again
--   (ccsync.capture_function_sql), as in revisions 0010 and 0011: a TRUNCATE on a PC now journals the PC's pull
--   position (what of the cloud it had, so that the push empties on the cloud only the rows the PC had), and a
--   table with a PostgreSQL 18 virtual generated column is captured without reading that column (it is not
--   stored, and reading it from a transition table failed every write of the table). CREATE OR REPLACE FUNCTION
--   only: the triggers stay, so the tracked tables are not locked.

do $$
declare
    v_self  text := (select name from ccsync.identity);
    v_table record;
begin
    for v_table in select schema_name, rel_name from ccsync.tracked order by table_name loop
        execute ccsync.capture_function_sql(format('%I.%I', v_table.schema_name, v_table.rel_name)::regclass,
                                            v_self, v_table.schema_name = 'ccsync');
    end loop;
end;
$$;
