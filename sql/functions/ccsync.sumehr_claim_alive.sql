-- ----------------------------------------------------------------------
-- Function: ccsync.sumehr_claim_alive(3)
--
--      Whether a Sumehr claim still holds: its time has not run out and
--      the database session that took it still exists (a publisher that
--      was killed or lost its connection leaves no live claim behind).
--
-- Parameters:
--      p_pid     the backend pid of the claiming session
--      p_role    the login role of that session
--      p_until   the latest time the claim may last
--
-- Returns:
--      boolean
--
-- Tables:
--      pg_stat_activity (pid and usesysid are visible to every role)
-- ----------------------------------------------------------------------
create or replace function ccsync.sumehr_claim_alive(p_pid integer, p_role oid, p_until timestamptz)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select p_until > now()
       and exists (select 1 from pg_stat_activity a where a.pid = p_pid and a.usesysid = p_role);
$$;

revoke all on function ccsync.sumehr_claim_alive(integer, oid, timestamptz) from public;
