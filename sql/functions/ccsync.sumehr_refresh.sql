-- ----------------------------------------------------------------------
-- Function: ccsync.sumehr_refresh(3)
--
--      Brings the publication state up to date with the latest Sumehr
--      version of each consenting patient, as the calling PC read them
--      from the application's tables on the cloud. A new version starts a
--      fresh publication (pending, no backoff); rows that do not change
--      are not written (no journal churn). A PC can write the application's
--      tables themselves, so what it tells here gives it no further power.
--
-- Parameters:
--      i_patients     the patients' keys, as text
--      i_latest       each one's latest Sumehr version
--      i_first_newer  when the first version newer than the HUB's was written
--                     (not later than now; null, infinite or before 1970:
--                     now, so that every client can read it)
--
-- Returns:
--      integer: how many patients' rows changed
--
-- Tables:
--      ccsync.sumehr_state (insert, update)
-- ----------------------------------------------------------------------
create or replace function ccsync.sumehr_refresh(i_patients text[], i_latest bigint[], i_first_newer timestamptz[])
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_changed integer;
begin
    perform ccsync.require_node();
    insert into ccsync.sumehr_state as s (patient, latest_version, state, since)
    select c.patient, c.latest,
           case when coalesce(o.hub_version, -1) >= c.latest then 'up_to_date' else 'pending' end,
           case when c.first_newer >= timestamptz '1970-01-01 00:00+00' then least(c.first_newer, now()) else now() end
      from (select distinct on (u.patient) u.patient, u.latest, u.first_newer
              from unnest(i_patients, i_latest, i_first_newer) as u(patient, latest, first_newer)
             where u.patient is not null and u.latest is not null
             order by u.patient, u.latest desc) c
      left join ccsync.sumehr_state o on o.patient = c.patient
     order by c.patient
    on conflict (patient) do update set
        latest_version = excluded.latest_version,
        state = case when coalesce(s.hub_version, -1) >= excluded.latest_version then 'up_to_date'
                     when excluded.latest_version > coalesce(s.latest_version, -1) then 'pending'
                     else s.state end,
        reason = case when coalesce(s.hub_version, -1) >= excluded.latest_version
                        or excluded.latest_version > coalesce(s.latest_version, -1) then null else s.reason end,
        attempts = case when coalesce(s.hub_version, -1) >= excluded.latest_version
                          or excluded.latest_version > coalesce(s.latest_version, -1) then 0 else s.attempts end,
        next_attempt = case when coalesce(s.hub_version, -1) >= excluded.latest_version
                              or excluded.latest_version > coalesce(s.latest_version, -1) then null
                            else s.next_attempt end,
        since = case when (s.state = 'up_to_date') = (coalesce(s.hub_version, -1) >= excluded.latest_version)
                     then s.since
                     when coalesce(s.hub_version, -1) >= excluded.latest_version then now()
                     else excluded.since end,
        updated_at = now()
      where s.latest_version is distinct from excluded.latest_version;
    get diagnostics v_changed = row_count;
    return v_changed;
end;
$$;

revoke all on function ccsync.sumehr_refresh(text[], bigint[], timestamptz[]) from public;
