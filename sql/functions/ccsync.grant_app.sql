-- ----------------------------------------------------------------------
-- Function: ccsync.grant_app(1)
--
--      Registers an application role and grants it the tracked tables
--      (read and write, their schemas and sequences). It needs nothing on
--      schema ccsync: the capture triggers run as the schema owner. The
--      tables `ccsync track` or `ccsync init` add later are granted to it
--      too. Run by the schema owner (`ccsync grant --app-role`).
--
-- Parameters:
--      p_role    the application's role
--
-- Errors (SQLSTATE):
--      CC015  no such role
--
-- Tables:
--      ccsync.app_roles (insert), grants on the tracked tables
-- ----------------------------------------------------------------------
create or replace function ccsync.grant_app(p_role name)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (select 1 from pg_roles as r where r.rolname = p_role) then
        raise exception 'role % does not exist: create it first (CREATE ROLE % LOGIN ...)', p_role, p_role
            using errcode = 'CC015';
    end if;
    insert into ccsync.app_roles (role) values (p_role) on conflict (role) do nothing;
    perform ccsync.grant_tables(p_role, false);
end;
$$;
