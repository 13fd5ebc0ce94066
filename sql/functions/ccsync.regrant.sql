-- ----------------------------------------------------------------------
-- Function: ccsync.regrant(1)
--
--      Grants every registered role (PCs in ccsync.nodes, applications in
--      ccsync.app_roles) its privileges again: after the functions are
--      reloaded by an upgrade (all), or when a table is tracked (one).
--      Does nothing before revision 0006 (no roles are registered yet).
--
-- Parameters:
--      p_table   the table just tracked; NULL: everything
--
-- Tables:
--      ccsync.nodes, ccsync.app_roles (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.regrant(p_table regclass default null)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role name;
begin
    if to_regclass('ccsync.app_roles') is null then
        return;
    end if;
    for v_role in
        select n.role from ccsync.nodes as n
         where n.role is not null and exists (select 1 from pg_roles as r where r.rolname = n.role)
    loop
        if p_table is null then
            perform ccsync.grant_pc(v_role);
        else
            perform ccsync.grant_tables(v_role, true, p_table);
        end if;
    end loop;
    for v_role in
        select a.role from ccsync.app_roles as a where exists (select 1 from pg_roles as r where r.rolname = a.role)
    loop
        perform ccsync.grant_tables(v_role, false, p_table);
    end loop;
end;
$$;
