-- ----------------------------------------------------------------------
-- Function: ccsync.sumehr_claim(3)
--
--      Takes one patient's Sumehr publication for the calling PC, before
--      anything is sent to the HUB: of two publishers, one gets the claim
--      and the other is told the patient is busy. Only a patient whose HUB
--      version is behind and who is due (a new version, or past its
--      backoff) is claimed. A dead claim (see sumehr_claim_alive) is taken
--      over at once.
--
-- Parameters:
--      i_patient   the patient's key, as text
--      i_seconds   the longest the claim may last: more than 0 and at most
--                  600 (a HUB call's deadline and a margin); anything else,
--                  infinity and NaN included, is refused (CC051)
--      i_clock     replaces now() to decide whether a failed patient is due
--                  (tests step past a backoff with it); null: now()
--
-- Returns:
--      claim        the claim's id, to record the outcome with; null when not claimed
--      hub_version  the version the HUB holds
--      busy         true when another publisher's live claim holds the patient
--
-- Tables:
--      ccsync.sumehr_state (read, row lock), ccsync.sumehr_claims (insert or take over)
--
-- Errors:
--      CC010  the role is registered to no node; CC051  a claim without bound
-- ----------------------------------------------------------------------
create or replace function ccsync.sumehr_claim(i_patient text, i_seconds double precision,
                                               i_clock timestamptz default null,
                                               out claim uuid, out hub_version bigint, out busy boolean)
returns record
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_node  text := ccsync.require_node();
    v_state record;  -- a row of ccsync.sumehr_state (record: loaded before that table exists)
begin
    if i_seconds is null or not (i_seconds > 0 and i_seconds <= 600) then
        raise exception 'a Sumehr claim lasts more than 0 and at most 600 seconds, not %', i_seconds
            using errcode = 'CC051';
    end if;
    busy := false;
    select * into v_state from ccsync.sumehr_state s where s.patient = i_patient for update;
    if not found or v_state.state = 'up_to_date'
       or v_state.latest_version <= coalesce(v_state.hub_version, -1)
       or not coalesce(v_state.next_attempt <= coalesce(i_clock, now())
                       or (v_state.next_attempt is null and v_state.state = 'pending'), false) then
        return;
    end if;
    insert into ccsync.sumehr_claims as c (patient, node, claim, backend_pid, backend_role, claimed_until)
    values (i_patient, v_node, gen_random_uuid(), pg_backend_pid(), (select r.oid from pg_roles r where r.rolname = session_user),
            now() + make_interval(secs => i_seconds))
    on conflict (patient) do update
        set node = excluded.node, claim = excluded.claim, backend_pid = excluded.backend_pid,
            backend_role = excluded.backend_role, claimed_at = now(), claimed_until = excluded.claimed_until
        where not ccsync.sumehr_claim_alive(c.backend_pid, c.backend_role, c.claimed_until)
    returning c.claim into claim;
    if claim is null then
        busy := true;
    else
        hub_version := v_state.hub_version;
    end if;
end;
$$;

revoke all on function ccsync.sumehr_claim(text, double precision, timestamptz) from public;
