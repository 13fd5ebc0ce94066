-- ccsync, a step of revisions 0010, 0011, 0012, 0014, 0015 and 0016 (after their functions are loaded): every capture function
-- written again.
--
-- Overview
--   No table changes. Every tracked table's generated capture function is written again
--   (ccsync.capture_function_sql, as the revision's functions now write it). CREATE OR REPLACE FUNCTION only:
--   the triggers stay, so the tracked tables are not locked. A revision that changes what
--   ccsync.capture_function_sql writes runs this file after load_functions().

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
