-- ccsync tables, revision 0007: who is publishing a patient's Sumehr now, on the cloud only; invalid
-- documents as a state of their own.
--
-- Overview
--   ccsync.sumehr_claims  (cloud, never replicated) the publisher sending a patient's Sumehr to the HUB now:
--                         its node (from the connected role, never chosen by the PC), the claim's id, the
--                         database session that holds it and the latest time it may last. A claim is live
--                         while that session exists and its time has not run out (ccsync.sumehr_claim_alive),
--                         so the claim of a publisher that was killed ends with its connection. Written only
--                         by the ccsync.sumehr_* functions; no PC role has a privilege on it.
--   ccsync.sumehr_state   (replicated) gains the state 'invalid': the latest document is not a publishable
--                         Sumehr of this very patient; it waits for a new version or `ccsync sumehr retry`.
--                         Its claimed_by and claimed_until columns are no longer written (claims live in
--                         ccsync.sumehr_claims, so a claim is no longer a change every PC pulls).

create table ccsync.sumehr_claims (
    patient       text        not null,
    node          text        not null,
    claim         uuid        not null,
    backend_pid   integer     not null,
    backend_role  oid         not null,
    claimed_at    timestamptz not null default now(),
    claimed_until timestamptz not null,
    constraint sumehr_claims_pkey primary key (patient)
);

alter table ccsync.sumehr_state
    drop constraint sumehr_state_state_valid,
    add constraint sumehr_state_state_valid check (state in ('up_to_date', 'pending', 'failed', 'invalid'));
