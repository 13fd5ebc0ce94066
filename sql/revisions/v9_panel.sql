-- ccsync tables, revision 0009: what the status light, the panel's sessions and the display labels need.
--
-- Overview
--   ccsync.state          (node) + reason: why the node is offline (a code, see reconciler/reasons.py),
--                         + failures: sync runs failed in a row while the cloud answered (reset by a
--                         success), + last_error_code: the class of the last error (its sentence is
--                         last_error; raw exception texts go to the log, never here)
--   ccsync.history        (node) + runs: routine runs folded into one row, + reason: the code of an
--                         offline event; new directions 'offline' and 'online' (the node's transitions)
--   ccsync.tracked        (everywhere) + label: the display label of a row, an SQL expression over the
--                         row's columns set by the schema owner on the cloud (`ccsync label`), copied to
--                         each PC by init and by every sync
--   ccsync.panel_sessions (node, never replicated) the panel's logged-in sessions, by the SHA-256 of their
--                         random id: logging out or removing the user ends them on the server

alter table ccsync.state
    add column reason          text,
    add column failures        integer not null default 0,
    add column last_error_code text;

alter table ccsync.history
    add column runs   integer not null default 1,
    add column reason text,
    drop constraint history_direction_valid,
    add constraint history_direction_valid
        check (direction in ('push', 'pull', 'sync', 'init', 'login', 'offline', 'online'));

alter table ccsync.tracked add column label text;

create table ccsync.panel_sessions (
    id_hash      text        not null,
    user_name    text        not null,
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at   timestamptz not null,
    constraint panel_sessions_pkey primary key (id_hash),
    constraint panel_sessions_user_fkey foreign key (user_name)
        references ccsync.panel_users (name) on delete cascade on update cascade
);

create index panel_sessions_user_idx on ccsync.panel_sessions (user_name);
