-- ----------------------------------------------------------------------
-- Function: ccsync.sumehr_record(9)
--
--      Records the outcome of one publication and ends its claim. Only the
--      PC holding that very claim can record: a claim that was taken over
--      (it died) or released records nothing. A failed patient is due again
--      after a capped exponential backoff; an invalid document waits for a
--      new version or ccsync.sumehr_retry. The reason is cut to 500
--      characters, the HUB's transaction id to 100 and the backoff to one
--      day, whatever the PC sends.
--
-- Parameters:
--      i_patient         the patient's key, as text
--      i_claim           the claim's id from ccsync.sumehr_claim
--      i_version         the version that was sent (or checked)
--      i_outcome         published, failed (the HUB refused or could not be
--                        reached), invalid (not sent: not a publishable
--                        Sumehr of this patient) or nothing (no newer
--                        document than the HUB's)
--      i_reason          why, in words (failed and invalid)
--      i_transaction_id  the HUB's id of the transaction (published)
--      i_retry_base      seconds before the first retry of a failure
--      i_retry_max       the longest wait between two retries
--      i_clock           replaces now() as the start of the backoff (tests)
--
-- Returns:
--      boolean: whether the outcome was recorded
--
-- Tables:
--      ccsync.sumehr_claims (delete), ccsync.sumehr_state (update)
-- ----------------------------------------------------------------------
create or replace function ccsync.sumehr_record(i_patient text, i_claim uuid, i_version bigint, i_outcome text,
                                                i_reason text default null, i_transaction_id text default null,
                                                i_retry_base double precision default 30,
                                                i_retry_max double precision default 3600,
                                                i_clock timestamptz default null)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node     text := ccsync.require_node();
    s          record;  -- a row of ccsync.sumehr_state
    v_latest   bigint;
    v_hub      bigint;
    v_tid      text;
    v_reason   text := left(i_reason, 500);
    v_attempts integer;
    v_next     timestamptz;
    v_state    text;
    v_wait     double precision;
    v_found    boolean;
begin
    if i_outcome is null or i_outcome not in ('published', 'failed', 'invalid', 'nothing') then
        raise exception 'unknown Sumehr outcome %: published, failed, invalid or nothing', i_outcome
            using errcode = 'CC052';
    end if;
    -- the state row first, as ccsync.sumehr_claim locks it: the same order, no deadlock
    select * into s from ccsync.sumehr_state t where t.patient = i_patient for update;
    v_found := found;
    delete from ccsync.sumehr_claims c where c.patient = i_patient and c.claim = i_claim and c.node = v_node;
    if not found then
        return false;
    end if;
    if not v_found then
        return true;
    end if;
    v_latest := s.latest_version;
    v_hub := s.hub_version;
    v_tid := s.hub_transaction_id;
    v_attempts := s.attempts;
    if i_outcome = 'nothing' then  -- the newest document is not newer than the HUB's, or there is none left
        v_latest := i_version;
        v_reason := null;
    elsif i_outcome = 'published' then
        if v_hub is null or i_version >= v_hub then
            v_hub := i_version;
            v_tid := left(i_transaction_id, 100);
        end if;
        v_latest := greatest(coalesce(v_latest, 0), i_version);
        v_reason := null;
        v_attempts := 0;
    else
        v_latest := greatest(coalesce(v_latest, 0), i_version);
        v_attempts := v_attempts + 1;
        if i_outcome = 'failed' then
            v_wait := least(greatest(coalesce(i_retry_base, 30), 1) * 2 ^ least(v_attempts - 1, 30),
                            greatest(coalesce(i_retry_max, 3600), 1), 86400);
            v_next := least(greatest(coalesce(i_clock, now()), now()) + make_interval(secs => v_wait),
                            now() + interval '1 day');  -- a time every client can read, whatever the PC sends
        end if;
    end if;
    if v_latest is not null and v_hub is not null and v_hub >= v_latest then
        v_state := 'up_to_date';
        v_reason := null;
        v_next := null;
    elsif i_outcome = 'nothing' then
        v_state := s.state;
    elsif v_latest is not null and i_version < v_latest then
        v_state := 'pending';  -- a newer version came in meanwhile: try it now
        v_next := null;
    elsif i_outcome = 'published' then
        v_state := 'pending';
    else
        v_state := i_outcome;
    end if;
    update ccsync.sumehr_state t
       set latest_version = v_latest, hub_version = v_hub, hub_transaction_id = v_tid, state = v_state,
           reason = v_reason, attempts = v_attempts,
           last_attempt = case when i_outcome = 'nothing' then t.last_attempt else now() end,
           next_attempt = v_next,
           since = case when (t.state = 'up_to_date') = (v_state = 'up_to_date') then t.since else now() end,
           claimed_by = null, claimed_until = null, updated_at = now()
     where t.patient = i_patient;
    return true;
end;
$$;

revoke all on function ccsync.sumehr_record(text, uuid, bigint, text, text, text, double precision,
                                            double precision, timestamptz) from public;
