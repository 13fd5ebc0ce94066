-- ----------------------------------------------------------------------
-- Function: ccsync.grant_pc(1)
--
--      Every privilege a PC's role has on the cloud (design-0.2 §3), and
--      none more: it reads the journal and ccsync's replicated tables,
--      reads and writes the tracked tables (a push applies changes there),
--      and calls the functions that keep its own bookkeeping, which take
--      the node from the role. It writes no ccsync table itself.
--      Run by the cloud's schema owner, through ccsync.pc_add.
--
-- Parameters:
--      p_role    the PC's login role
--
-- Tables:
--      grants on schema ccsync, its tables, sequence and functions, the
--      database (connect, temporary: the push stages its chunks in a
--      temporary table) and the tracked tables (ccsync.grant_tables)
-- ----------------------------------------------------------------------
create or replace function ccsync.grant_pc(p_role name)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    execute format('grant usage on schema ccsync to %I', p_role);
    execute format('grant select on ccsync.identity, ccsync.alembic_version, ccsync.tracked, ccsync.journal, '
                   'ccsync.nodes, ccsync.conflicts, ccsync.prune_horizon, ccsync.changes to %I', p_role);
    execute format('grant select on sequence ccsync.journal_id_seq to %I', p_role);
    -- the Sumehr publisher's claims and outcomes go through the ccsync.sumehr_* functions below (the former
    -- direct writes, granted by revision 0006, are taken back)
    execute format('revoke insert, update, delete, truncate on ccsync.sumehr_state from %I', p_role);
    execute format('grant select on ccsync.sumehr_state to %I', p_role);
    execute format('grant execute on function ccsync.caller_node(), ccsync.node_register(uuid, text, pg_snapshot), '
                   'ccsync.node_leave(), '
                   'ccsync.push_position(), ccsync.push_store(pg_snapshot, boolean, bigint), '
                   'ccsync.report_pulled(pg_snapshot), ccsync.prune(double precision, double precision), '
                   'ccsync.record_conflict(text, jsonb, text, text[], jsonb, jsonb, jsonb, jsonb, bigint, bigint, text), '
                   'ccsync.journal_for_node(text, jsonb), ccsync.decide(bigint, jsonb, jsonb), '
                   'ccsync.record_refusal(text, jsonb, jsonb, text, bigint), ccsync.hlc_observe(bigint), '
                   'ccsync.changed(jsonb, jsonb), ccsync.row_image_sql(regclass, text, boolean), '
                   'ccsync.value_sql(regtype, text), '
                   'ccsync.sumehr_refresh(text[], bigint[], timestamptz[]), '
                   'ccsync.sumehr_claim(text, double precision, timestamptz), ccsync.sumehr_release(text, uuid), '
                   'ccsync.sumehr_record(text, uuid, bigint, text, text, text, double precision, double precision, '
                   'timestamptz), ccsync.sumehr_retry(text) to %I', p_role);
    begin
        execute format('grant connect, temporary on database %I to %I', current_database(), p_role);
    exception when insufficient_privilege then
        raise notice 'not allowed to grant connect and temporary on database % to %: they come from PUBLIC unless revoked',
            current_database(), p_role;
    end;
    if to_regclass('ccsync.decisions') is not null then  -- revision 0012
        execute format('grant select on ccsync.decisions to %I', p_role);
    end if;
    perform ccsync.grant_tables(p_role, true);
end;
$$;
