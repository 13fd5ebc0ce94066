-- ccsync tables, revision 0003: Sumehr publication state on the regional HUB.
--
-- Overview
--   ccsync.sumehr_state   (everywhere, replicated like a tracked table) per patient whose privacy flag asks
--                         for it: the latest Sumehr version, the version on the HUB, the publication state
--                         and why it is not up to date. Written on the cloud by the publisher that claimed
--                         the patient (claimed_by/claimed_until), so one version is published once even when
--                         several PCs run the service.

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
