-- ----------------------------------------------------------------------
-- Function: ccsync.revoke_pc(1)
--
--      Takes back from a role what ccsync.grant_pc gave it (a node given
--      another role by `ccsync pc add`). Run by the schema owner.
--
-- Parameters:
--      p_role    the former PC role
--
-- Tables:
--      grants on schema ccsync, its tables, sequences and functions, and
--      on the tracked tables
-- ----------------------------------------------------------------------
create or replace function ccsync.revoke_pc(p_role name)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rel regclass;
begin
    if not exists (select 1 from pg_roles as r where r.rolname = p_role) then
        return;
    end if;
    execute format('revoke all on all tables in schema ccsync from %I', p_role);
    execute format('revoke all on all sequences in schema ccsync from %I', p_role);
    execute format('revoke all on all functions in schema ccsync from %I', p_role);
    execute format('revoke all on schema ccsync from %I', p_role);
    for v_rel in
        select format('%I.%I', t.schema_name, t.rel_name)::regclass
          from ccsync.tracked as t
         where t.schema_name <> 'ccsync' and to_regclass(format('%I.%I', t.schema_name, t.rel_name)) is not null
    loop
        execute format('revoke select, insert, update, delete, truncate on %s from %I', v_rel, p_role);
    end loop;
end;
$$;
