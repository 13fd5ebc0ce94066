-- ----------------------------------------------------------------------
-- Function: ccsync.sumehr_release(2)
--
--      Gives up a claim without recording an outcome (the publisher
--      stopped before sending, or the patient's consent went away). Only
--      the PC that holds the claim can release it.
--
-- Parameters:
--      i_patient   the patient's key, as text
--      i_claim     the claim's id from ccsync.sumehr_claim
--
-- Returns:
--      boolean: whether that claim was the caller's and is released
--
-- Tables:
--      ccsync.sumehr_claims (delete)
-- ----------------------------------------------------------------------
create or replace function ccsync.sumehr_release(i_patient text, i_claim uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_node text := ccsync.require_node();
begin
    delete from ccsync.sumehr_claims c where c.patient = i_patient and c.claim = i_claim and c.node = v_node;
    return found;
end;
$$;

revoke all on function ccsync.sumehr_release(text, uuid) from public;
