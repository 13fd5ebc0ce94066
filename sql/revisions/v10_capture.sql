-- ccsync, revision 0010: capture never refuses a write to a table altered since it was tracked (design-0.2 §2).
--
-- Overview
--   No table changes. Every tracked table's generated capture function is written again
--   (ccsync.capture_function_sql): it compares the table's shape per statement and captures an altered table
--   through the same statement written from the catalog as it is now. CREATE OR REPLACE FUNCTION only: the
--   triggers stay, so the tracked tables are not locked.

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
