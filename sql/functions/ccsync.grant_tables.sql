-- ----------------------------------------------------------------------
-- Function: ccsync.grant_tables(3)
--
--      Grants a role what it needs on the tracked tables of the
--      application (all, or one): read and write them, use their schemas
--      and the sequences behind their defaults. Run by the schema owner
--      (through ccsync.grant_pc, ccsync.grant_app, ccsync.regrant).
--
-- Parameters:
--      p_role    the role
--      p_pc      a PC's role (which also applies TRUNCATEs it pushes),
--                else an application's
--      p_table   one table; NULL: every tracked table
--
-- Tables:
--      ccsync.tracked (read), pg_depend (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.grant_tables(p_role name, p_pc boolean, p_table regclass default null)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t   record;
    v_seq text;
begin
    for v_t in
        select t.schema_name, t.rel_name, format('%I.%I', t.schema_name, t.rel_name)::regclass as rel
          from ccsync.tracked as t
         where t.schema_name <> 'ccsync'
           and to_regclass(format('%I.%I', t.schema_name, t.rel_name)) is not null
           and (p_table is null or format('%I.%I', t.schema_name, t.rel_name)::regclass = p_table)
    loop
        execute format('grant usage on schema %I to %I', v_t.schema_name, p_role);
        execute format('grant select, insert, update, delete%s on %s to %I',
                       case when p_pc then ', truncate' else '' end, v_t.rel, p_role);
        for v_seq in
            select format('%I.%I', sn.nspname, s.relname)
              from pg_depend as d
              join pg_class as s on s.oid = d.objid and s.relkind = 'S'
              join pg_namespace as sn on sn.oid = s.relnamespace
             where d.refobjid = v_t.rel and d.classid = 'pg_class'::regclass and d.deptype in ('a', 'i')
        loop
            execute format('grant usage, select on sequence %s to %I', v_seq, p_role);
        end loop;
    end loop;
end;
$$;
