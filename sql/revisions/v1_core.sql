-- ccsync tables, revision 0001: identity, tracked tables, the hybrid logical clock and the journal.
--
-- Overview
--   ccsync.identity   one row: the name of this database ('cloud' or a node name such as 'pc-reception')
--   ccsync.tracked    the tables whose changes are captured, their primary key and conflict policy
--   ccsync.hlc_seq    the hybrid logical clock: (wall-clock ms << 16) + counter, see ccsync.hlc_next()
--   ccsync.journal    one row per captured change (op: I, U, D, T); read in transaction-visibility
--                     batches through the txid index
--
-- Everything lives in schema ccsync, so uninstall is: drop the triggers, then drop schema ccsync cascade.

create table ccsync.identity (
    singleton    boolean     not null default true,
    name         text        not null,
    installed_at timestamptz not null default now(),
    constraint identity_pkey primary key (singleton),
    constraint identity_singleton check (singleton),
    constraint identity_name_valid check (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$')
);

create table ccsync.tracked (
    table_name  text        not null,   -- qualified and quoted as in SQL: public."Odd Table"
    schema_name text        not null,
    rel_name    text        not null,
    pk_columns  text[]      not null,
    policy      text        not null default 'manual',
    tracked_at  timestamptz not null default now(),
    constraint tracked_pkey primary key (table_name),
    constraint tracked_policy_valid check (policy in ('manual', 'cloud-wins', 'node-wins', 'latest-wins')),
    constraint tracked_pk_not_empty check (cardinality(pk_columns) > 0)
);

create sequence ccsync.hlc_seq;

create sequence ccsync.journal_id_seq;

create table ccsync.journal (
    id         bigint not null default nextval('ccsync.journal_id_seq'),
    txid       xid8   not null default pg_current_xact_id(),
    hlc        bigint not null,
    origin     text   not null,
    table_name text   not null,
    op         "char" not null,
    pk         jsonb,
    old        jsonb,
    new        jsonb
);
-- No primary key and no check constraint: only ccsync's own functions write here (ids come from the
-- sequence, op is one of I, U, D, T), and every index or constraint is paid on each captured row.

alter sequence ccsync.journal_id_seq owned by ccsync.journal.id;

create index journal_txid_idx on ccsync.journal (txid);
