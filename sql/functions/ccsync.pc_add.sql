-- ----------------------------------------------------------------------
-- Function: ccsync.pc_add(3)
--
--      Registers a PC on the cloud with its own login role, and grants
--      that role what a PC needs (ccsync.grant_pc). Run again, it grants
--      again; with another role, the node moves to it and the former role
--      loses its grants. Run by the cloud's schema owner
--      (`ccsync pc add NODE --role ROLE`, or sql/grants.sql).
--
-- Parameters:
--      p_node         the PC's name, as installed on it (`ccsync install --name`)
--      p_role         its login role on the cloud: one role per PC
--      p_new_install  forget the installation bound to the node (the PC was
--                     reinstalled): its next `ccsync init` binds the new one
--
-- Errors (SQLSTATE):
--      22023  invalid node name
--      CC015  no such role, or a role that is not fit to be a PC's
--
-- Tables:
--      ccsync.nodes (insert or update)
-- ----------------------------------------------------------------------
create or replace function ccsync.pc_add(p_node text, p_role name, p_new_install boolean default false)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_other text;
    v_old   name;
begin
    if p_node is null or p_node !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' or p_node = 'cloud' then
        raise exception 'invalid node name "%": use the PC''s name as installed on it (lowercase letters, digits, ''.'', ''_'' or ''-'')',
            p_node using errcode = '22023';
    end if;
    if not exists (select 1 from pg_roles as r where r.rolname = p_role) then
        raise exception 'role % does not exist: create it first (CREATE ROLE % LOGIN PASSWORD ...), or let `ccsync pc add` create it (--create-role)',
            p_role, p_role using errcode = 'CC015';
    end if;
    if exists (select 1 from pg_roles as r, pg_namespace as n
                where r.rolname = p_role and n.nspname = 'ccsync'
                  and (r.rolsuper or pg_has_role(p_role, n.nspowner, 'MEMBER'))) then
        raise exception 'role % may do anything to ccsync (a superuser or the schema owner): a PC needs a role of its own, with no other rights',
            p_role using errcode = 'CC015';
    end if;
    select n.name into v_other from ccsync.nodes as n where n.role = p_role and n.name <> p_node;
    if v_other is not null then
        raise exception 'role % is already the role of node "%": every PC has a role of its own', p_role, v_other
            using errcode = 'CC015';
    end if;
    select n.role into v_old from ccsync.nodes as n where n.name = p_node;
    insert into ccsync.nodes as n (name, role) values (p_node, p_role)
    on conflict (name) do update
       set role = excluded.role,
           install_id = case when p_new_install then null else n.install_id end;
    if v_old is not null and v_old <> p_role then
        perform ccsync.revoke_pc(v_old);
    end if;
    perform ccsync.grant_pc(p_role);
end;
$$;
