-- ccsync tables, revision 0004: the admin panel's users (local to each database, never replicated).
--
-- Overview
--   ccsync.panel_users    people who may log in to the panel of this PC: a password hash (a well-known
--                         library's function, never the password) and the hash of an API token for scripts

create table ccsync.panel_users (
    name           text        not null,
    password_hash  text        not null,
    api_token_hash text,
    created_at     timestamptz not null default now(),
    last_login_at  timestamptz,
    constraint panel_users_pkey primary key (name),
    constraint panel_users_name_valid check (length(name) between 1 and 100)
);
