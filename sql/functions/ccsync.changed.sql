-- ----------------------------------------------------------------------
-- Function: ccsync.changed(2)
--
--      What an update changed, from its two row images: the keys of p_new
--      whose value differs from p_old's (compared as their exact text, so
--      numeric 1.0 -> 1.00 is a change), with p_new's values. It reads both
--      forms the journal has held: full row images (revision 0008 and
--      later) and the changed columns only (up to 0007). The old values of
--      the same columns are p_old restricted to these keys
--      (ccsync.changed(p_new, p_old)).
--
-- Parameters:
--      p_old   the row image before the update
--      p_new   the row image after it
--
-- Returns:
--      jsonb: the changed columns with their values in p_new ('{}' if none)
-- ----------------------------------------------------------------------
create or replace function ccsync.changed(p_old jsonb, p_new jsonb)
returns jsonb
language sql
immutable
parallel safe
as $$
    select coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb)
      from jsonb_each(p_new) as n
     where (p_old -> n.key)::text is distinct from n.value::text
$$;
