-- ccsync tables, revision 0012: one record per conflicting change, refused transactions, decisions.
--
-- Overview
--   ccsync.conflicts   (everywhere, replicated) no longer one open record per row: every conflicting change
--                      has its own record, so a second conflict on a row never overwrites the first. A new
--                      kind, 'refused': a source transaction the cloud's constraints refused, kept whole in
--                      `changes` (its journal entries in order) with the reason in words (`reason`: table
--                      and constraint names, never a row value). `decision`: the id of the decision in
--                      force, made on a node (ccsync.decide checks that a revisit saw it).
--   ccsync.decisions   (cloud, replicated to every node) the audit of decisions the cloud accepted: each
--                      person's decision on a record, the first and every revisit, with who, when, where.
--                      Written by ccsync.decide only; a decision the cloud refuses (the record was decided
--                      meanwhile) comes back to its node as a refused record instead.

alter table ccsync.conflicts
    add column reason   text,
    add column changes  jsonb,
    add column decision uuid;

alter table ccsync.conflicts drop constraint conflicts_kind_valid;
alter table ccsync.conflicts add constraint conflicts_kind_valid
    check (kind in ('update_update', 'update_delete', 'delete_update', 'insert_insert', 'refused'));

drop index ccsync.conflicts_one_open_per_row;
create index conflicts_open on ccsync.conflicts (node, table_name, pk) where status = 'open';

create table ccsync.decisions (
    id           uuid        not null,
    conflict_id  bigint      not null,
    decided_on   text        not null,
    resolution   text        not null,
    resolved_by  text        not null,
    resolved_at  timestamptz not null,
    resolved_row jsonb,
    revisit_of   uuid,
    accepted_at  timestamptz not null default now(),
    constraint decisions_pkey primary key (id)
);

create index decisions_conflict on ccsync.decisions (conflict_id);

-- decide takes the node's record before its decision too (a revisit must have seen the decision in force)
drop function if exists ccsync.decide(bigint, jsonb);
