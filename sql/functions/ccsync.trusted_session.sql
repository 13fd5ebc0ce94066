-- ----------------------------------------------------------------------
-- Function: ccsync.trusted_session(0)
--
--      Whether the connected role may already do anything to ccsync in
--      this database: a superuser, or a member of the role that owns the
--      ccsync schema. Such a session is trusted with what it says of
--      itself (its ccsync.origin setting): the one-role setup of
--      design-0.2 §3, which has no isolation between PCs.
--
-- Returns:
--      boolean
--
-- Tables:
--      pg_roles, pg_namespace (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.trusted_session()
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(bool_or(r.rolsuper or pg_has_role(session_user, n.nspowner, 'MEMBER')), false)
      from pg_roles as r, pg_namespace as n
     where r.rolname = session_user
       and n.nspname = 'ccsync'
$$;
