-- ccsync, revision 0011: a cheaper capture (issue 16).
--
-- Overview
--   ccsync.journal loses its statement trigger journal_notify (a trigger call per journaled statement): the
--   capture functions notify once per transaction (ccsync.notify_journal). Every tracked table's capture function
--   is written again (CREATE OR REPLACE FUNCTION only: the tracked tables are not locked); a table whose columns'
--   JSON form no setting changes gets a function without the capture settings.

drop trigger if exists journal_notify on ccsync.journal;

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
