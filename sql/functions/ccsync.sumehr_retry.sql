-- ----------------------------------------------------------------------
-- Function: ccsync.sumehr_retry(1)
--
--      Makes the next publication pass try again now instead of waiting for
--      the backoff: every patient whose HUB version is behind, or one.
--      An invalid document is checked again.
--
-- Parameters:
--      i_patient   the patient's key, as text; null: every patient
--
-- Returns:
--      integer: how many patients will be tried again
--
-- Tables:
--      ccsync.sumehr_state (update)
-- ----------------------------------------------------------------------
create or replace function ccsync.sumehr_retry(i_patient text default null)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    perform ccsync.require_node();
    update ccsync.sumehr_state s set next_attempt = now(), updated_at = now()
     where s.state <> 'up_to_date' and (i_patient is null or s.patient = i_patient);
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;

revoke all on function ccsync.sumehr_retry(text) from public;
