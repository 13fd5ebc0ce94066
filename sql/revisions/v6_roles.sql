-- ccsync tables, revision 0006: the roles of issue 14 and the identity of an installation.
--
-- Overview
--   ccsync.identity.install_id  a random id made when ccsync is installed in this database: a PC's
--                               installation, told apart from a second one (a clone) with the same name
--   ccsync.nodes.role           (cloud) the login role a node's reconciler connects with; the cloud's
--                               functions take the node from it (ccsync.caller_node()), never from the client
--   ccsync.nodes.install_id     (cloud) the installation bound to the node name by its first `ccsync init`
--                               (ccsync.node_register): another installation with the same name is refused
--   ccsync.apply_roles          (node) the roles whose sessions may apply changes without journaling them
--                               (ccsync.apply = 'on'): the role that installed ccsync here, by default
--   ccsync.conflicts.decided_on the node where a person decided the conflict, stamped by the cloud from the
--                               role that pushed the decision (ccsync.decide)
--   ccsync.app_roles            the application roles granted the tracked tables (`ccsync grant --app-role`);
--                               `ccsync track` and `ccsync init` grant them the tables they add

alter table ccsync.identity add column install_id uuid not null default gen_random_uuid();

alter table ccsync.nodes add column role name;
alter table ccsync.nodes add column install_id uuid;
alter table ccsync.nodes add constraint nodes_role_key unique (role);

alter table ccsync.conflicts add column decided_on text;

create table ccsync.apply_roles (
    role     name        not null,
    added_at timestamptz not null default now(),
    constraint apply_roles_pkey primary key (role)
);

create table ccsync.app_roles (
    role     name        not null,
    added_at timestamptz not null default now(),
    constraint app_roles_pkey primary key (role)
);

-- a push's changes are journaled by the cloud's triggers now, with their own clock values
drop function if exists ccsync.hlc_reserve(bigint);
