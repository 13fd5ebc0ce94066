-- ----------------------------------------------------------------------
-- Function: ccsync.capture_origin(2)
--
--      The origin a capture trigger journals a change with, or NULL when
--      the change is not journaled (the no-echo rule, design-0.2 §2):
--
--      - on a node, a change is not journaled only when the session sets
--        ccsync.apply = 'on' and its login role is one of the node's apply
--        roles (ccsync.apply_roles: the reconciler applying what it
--        pulled); anybody else's change is journaled with the node's name,
--        whatever it sets;
--      - on the cloud nothing is skipped: a change is journaled with the
--        node of the connected role (ccsync.caller_node: a PC's push), else
--        as the cloud's own; ccsync's replicated tables (conflicts, Sumehr
--        state) always as the cloud's, so that every node pulls them.
--
-- Parameters:
--      p_self      the database's identity ('cloud' or the node's name)
--      p_internal  the table is one of ccsync's replicated tables
--
-- Returns:
--      text: the origin, or NULL (not journaled)
--
-- Tables:
--      ccsync.apply_roles, ccsync.nodes (read)
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_origin(p_self text, p_internal boolean)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select case
               when p_self <> 'cloud' then
                   case when current_setting('ccsync.apply', true) = 'on'
                              and exists (select 1 from ccsync.apply_roles as a where a.role = session_user)
                        then null
                        else p_self
                   end
               when p_internal then 'cloud'
               else coalesce(ccsync.caller_node(), 'cloud')
           end
$$;
