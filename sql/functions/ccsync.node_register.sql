-- ----------------------------------------------------------------------
-- Function: ccsync.node_register(3)
--
--      Binds the calling node to the installation that calls, on the
--      cloud: the first call binds the install id (made by `ccsync install`
--      on the PC), a later one with another install id is refused (a
--      second PC installed with the same name, a clone). `ccsync init`
--      calls it with the push position the node starts from; every sync
--      calls it without one, to check.
--
--      The node is the one registered to the connected role. A trusted
--      session (the one-role setup, see ccsync.caller_node) registers the
--      node p_name, without a role.
--
-- Parameters:
--      p_install_id     ccsync.identity.install_id of the PC's database
--      p_name           the PC's name (ccsync.identity.name): it must be
--                       the node the role is registered to
--      p_push_snapshot  at init: the PC's snapshot its push starts after
--                       (its journal is empty then); NULL: unchanged
--
-- Returns:
--      text: the node's name
--
-- Errors (SQLSTATE):
--      CC010  the role is registered to no node
--      CC011  another installation is bound to the node, or the PC's
--             name is not the node of its role
--
-- Tables:
--      ccsync.nodes (insert for a trusted session, update)
-- ----------------------------------------------------------------------
create or replace function ccsync.node_register(p_install_id uuid, p_name text,
                                                p_push_snapshot pg_snapshot default null)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node  text;
    v_bound uuid;
begin
    select n.name into v_node from ccsync.nodes as n where n.role = session_user;
    if v_node is null then
        if not ccsync.trusted_session() then
            perform ccsync.require_node();  -- raises CC010
        end if;
        if p_name is null or p_name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' or p_name = 'cloud' then
            raise exception 'invalid node name "%"', p_name using errcode = '22023';
        end if;
        v_node := p_name;
        insert into ccsync.nodes (name) values (v_node) on conflict (name) do nothing;
    elsif v_node <> p_name then
        raise exception 'this PC is installed as "%", but its cloud role % is registered to node "%": give each PC its own role (`ccsync pc add % --role ROLE` on the cloud) and use that role in its cloud DSN',
            p_name, session_user, v_node, p_name
            using errcode = 'CC011';
    end if;

    select n.install_id into v_bound from ccsync.nodes as n where n.name = v_node for update;
    if v_bound is null then
        update ccsync.nodes set install_id = p_install_id where name = v_node;
    elsif v_bound <> p_install_id then
        raise exception 'another installation is already registered as node "%" on the cloud: a second PC with the same name (a clone?) is refused; install this PC under a name of its own (`ccsync install --name NEW`, then `ccsync pc add NEW --role ROLE` on the cloud), or, if "%" was reinstalled, let the cloud''s owner run `ccsync pc add % --role ROLE --new-install` first',
            v_node, v_node, v_node
            using errcode = 'CC011';
    end if;
    if p_push_snapshot is not null then
        update ccsync.nodes
           set push_snapshot = p_push_snapshot, push_window = null, push_done_upto = null
         where name = v_node;
    end if;
    return v_node;
end;
$$;
