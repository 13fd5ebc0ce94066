-- ccsync tables, revision 0003: Sumehr publication state on the regional HUB.
--
-- Overview
--   ccsync.sumehr_state   (everywhere, replicated like a tracked table) per patient whose privacy flag asks
--                         for it: the latest Sumehr version, the version on the HUB, the publication state
--                         and why it is not up to date. Written on the cloud by the publisher that claimed
--                         the patient (claimed_by/claimed_until), so one version is published once even when
--                         several PCs run the service.
--
--   Columns: latest_version is the newest Sumehr the publisher saw on the cloud, hub_version the one the HUB
--   acknowledged (hub_transaction_id its id there). state: up_to_date (hub_version >= latest_version),
--   pending (a version waits for its first attempt) or failed (reason says why: the HUB's text, or
--   'invalid Sumehr: ...'); since is when the row last went from up to date to not, or back. attempts
--   counts the failures in a row; next_attempt is when a failed patient is due again (capped exponential
--   backoff), null on a failed row when only a new version or `ccsync sumehr retry` may help (an invalid
--   document). claimed_by/claimed_until: the node publishing the patient now; a claim of a publisher that
--   died expires at claimed_until. A node never writes these rows (the reason `offline` is computed when
--   listed), so they never conflict.

create table ccsync.sumehr_state (
    patient            text        not null,
    latest_version     bigint,
    hub_version        bigint,
    state              text        not null default 'pending',
    reason             text,
    since              timestamptz not null default now(),
    attempts           integer     not null default 0,
    last_attempt       timestamptz,
    next_attempt       timestamptz,
    hub_transaction_id text,
    claimed_by         text,
    claimed_until      timestamptz,
    updated_at         timestamptz not null default now(),
    constraint sumehr_state_pkey primary key (patient),
    constraint sumehr_state_state_valid check (state in ('up_to_date', 'pending', 'failed'))
);
