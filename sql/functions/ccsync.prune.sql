-- ----------------------------------------------------------------------
-- Function: ccsync.prune(2)
--
--      Deletes the cloud journal entries every registered node has pulled
--      and that are older than p_retention, and every entry older than
--      p_max_retention (a node that has not pulled those is told to run
--      `ccsync init --force`: ccsync.prune_horizon says which transactions
--      may be gone). Nodes call it now and then while they pull; for a
--      PC's role the retentions are never shorter than one day and 30 days
--      (the reconciler's defaults), so no PC can prune what another has not
--      pulled yet.
--
-- Parameters:
--      p_retention      seconds an entry every node has pulled is kept
--      p_max_retention  seconds any entry is kept
--
-- Returns:
--      bigint: how many entries went
--
-- Tables:
--      ccsync.journal (delete), ccsync.nodes (read),
--      ccsync.prune_horizon (update)
-- ----------------------------------------------------------------------
create or replace function ccsync.prune(p_retention double precision, p_max_retention double precision)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count bigint;
    v_top   bigint;
begin
    if not ccsync.trusted_session() then
        p_retention := greatest(p_retention, 86400);
        p_max_retention := greatest(p_max_retention, 2592000);
    end if;
    with h as (  -- the nodes that have run `ccsync init` (one registered by `pc add` alone needs nothing yet)
        select min(pg_snapshot_xmin(n.pulled_snapshot)) as all_pulled,
               coalesce(bool_and(n.pulled_snapshot is not null), true) as complete
          from ccsync.nodes as n
         where n.push_snapshot is not null
    ), cut as (
        select (extract(epoch from now() - make_interval(secs => p_retention)) * 1000)::bigint << 16 as normal,
               (extract(epoch from now() - make_interval(secs => p_max_retention)) * 1000)::bigint << 16 as forced
    ), d as (
        delete from ccsync.journal as j
         using h, cut
         where (h.complete and j.txid < h.all_pulled and j.hlc < cut.normal) or j.hlc < cut.forced
        returning j.txid
    )
    select count(*), max(d.txid::text::bigint) into v_count, v_top from d;
    if v_count > 0 then
        update ccsync.prune_horizon
           set txid = greatest(txid, (v_top + 1)::text::xid8), pruned_at = now();
    end if;
    return v_count;
end;
$$;
