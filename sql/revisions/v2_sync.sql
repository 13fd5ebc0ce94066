-- ccsync tables, revision 0002: sync positions, conflicts, status and history.
--
-- Overview
--   ccsync.nodes          (cloud) the registered nodes, and each node's push position: the node's
--                         snapshot up to which its transactions are applied on the cloud, kept in the
--                         same cloud transaction as the applied changes (exactly once)
--   ccsync.state          (node) one row: pull position (a cloud snapshot, kept in the same node
--                         transaction as the pulled changes), mode, progress, last sync, last error
--   ccsync.progress       (node) done/total of a long sync, for `ccsync status` and the panel
--   ccsync.init_progress  (node) tables copied by `ccsync init`, each with the cloud snapshot it was
--                         copied at, so an interrupted init resumes and no change is applied twice
--   ccsync.refresh        (node) rows whose cloud changes a pull skipped because a local change was
--                         waiting to be pushed; re-read from the cloud once that change is pushed
--   ccsync.conflicts      (everywhere, replicated like a tracked table) the conflict records
--   ccsync.history        (node) one row per sync run
--   ccsync.prune_horizon  (cloud) journal entries of transactions below this txid have been pruned

-- a journal entry meant for one node only (the cloud's version of a row after a conflict of that node)
alter table ccsync.journal add column target text;

create table ccsync.nodes (
    name            text        not null,
    registered_at   timestamptz not null default now(),
    push_snapshot   pg_snapshot,
    push_window     pg_snapshot,
    push_done_upto  bigint,
    pulled_snapshot pg_snapshot,
    last_push_at    timestamptz,
    last_pull_at    timestamptz,
    constraint nodes_pkey primary key (name)
);

create table ccsync.state (
    singleton       boolean     not null default true,
    pull_snapshot   pg_snapshot,
    pull_window     pg_snapshot,
    pull_done_upto  bigint,
    initialized_at  timestamptz,
    mode            text        not null default 'offline',
    mode_since      timestamptz not null default now(),
    last_sync_at    timestamptz,
    last_error      text,
    last_error_at   timestamptz,
    updated_at      timestamptz not null default now(),
    constraint state_pkey primary key (singleton),
    constraint state_singleton check (singleton),
    constraint state_mode_valid check (mode in ('online', 'offline', 'synchronizing'))
);

insert into ccsync.state default values;

-- progress of a long sync, apart from ccsync.state (whose row a pull keeps locked with its position)
create table ccsync.progress (
    singleton  boolean     not null default true,
    what       text,
    done       bigint,
    total      bigint,
    updated_at timestamptz not null default now(),
    constraint progress_pkey primary key (singleton),
    constraint progress_singleton check (singleton)
);

insert into ccsync.progress default values;

create table ccsync.init_progress (
    table_name text        not null,
    snapshot   pg_snapshot not null,
    rows       bigint      not null,
    copied_at  timestamptz not null default now(),
    constraint init_progress_pkey primary key (table_name)
);

create table ccsync.refresh (
    table_name text  not null,
    pk         jsonb not null,
    constraint refresh_pkey primary key (table_name, pk)
);

create sequence ccsync.conflict_id_seq;

create table ccsync.conflicts (
    id           bigint      not null default nextval('ccsync.conflict_id_seq'),
    node         text        not null,
    table_name   text        not null,
    pk           jsonb       not null,
    kind         text        not null,
    columns      text[]      not null default '{}',
    local_row    jsonb,
    cloud_row    jsonb,
    base         jsonb,
    diff         jsonb,
    local_hlc    bigint,
    cloud_hlc    bigint,
    detected_at  timestamptz not null default now(),
    status       text        not null default 'open',
    resolution   text,
    resolved_by  text,
    resolved_at  timestamptz,
    resolved_row jsonb,
    constraint conflicts_pkey primary key (id),
    constraint conflicts_kind_valid check (kind in ('update_update', 'update_delete', 'delete_update', 'insert_insert')),
    constraint conflicts_status_valid check (status in ('open', 'resolved')),
    constraint conflicts_resolution_valid check ((status = 'open') = (resolution is null))
);

alter sequence ccsync.conflict_id_seq owned by ccsync.conflicts.id;

create unique index conflicts_one_open_per_row on ccsync.conflicts (node, table_name, pk) where status = 'open';

create table ccsync.history (
    id           bigint generated always as identity,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    direction    text        not null,
    changes      bigint      not null default 0,
    transactions bigint      not null default 0,
    conflicts    bigint      not null default 0,
    seconds      double precision,
    error        text,
    constraint history_pkey primary key (id),
    constraint history_direction_valid check (direction in ('push', 'pull', 'sync', 'init', 'login'))
);

create table ccsync.prune_horizon (
    singleton boolean not null default true,
    txid      xid8    not null default '0',
    pruned_at timestamptz,
    constraint prune_horizon_pkey primary key (singleton),
    constraint prune_horizon_singleton check (singleton)
);

insert into ccsync.prune_horizon default values;
