"""Housekeeping of the cloud's journal: entries every registered node has pulled go after a retention period.

Entries older than the maximum retention go even if a node has not pulled them; such a node is told at its
next pull to run `ccsync init --force` (the prune horizon says which transactions may be gone).
"""

from __future__ import annotations

import time

import psycopg

from .. import clock

RETENTION_SECONDS = 24 * 3600
MAX_RETENTION_SECONDS = 30 * 24 * 3600


PRUNE_EVERY = 600.0  # seconds: a pull prunes at most this often (the delete scans the journal)
_last_prune = float("-inf")


def prune_now_and_then(cloud: psycopg.Connection) -> int:
    global _last_prune
    now = time.monotonic()
    if now - _last_prune < PRUNE_EVERY:
        return 0
    _last_prune = now
    return prune(cloud)


def prune(cloud: psycopg.Connection, retention: float = RETENTION_SECONDS,
          max_retention: float = MAX_RETENTION_SECONDS) -> int:
    """Delete prunable cloud journal entries; returns how many went."""
    with cloud.transaction():
        row = cloud.execute(
            """
            with h as (
                select min(pg_snapshot_xmin(pulled_snapshot)) as all_pulled,
                       coalesce(bool_and(pulled_snapshot is not null), false) as complete
                  from ccsync.nodes
            ), cut as (
                select ((extract(epoch from now() - make_interval(secs => %(ret)s)) * 1000)::bigint << %(bits)s) as normal,
                       ((extract(epoch from now() - make_interval(secs => %(max)s)) * 1000)::bigint << %(bits)s) as forced
            ), d as (
                delete from ccsync.journal j using h, cut
                 where (h.complete and j.txid < h.all_pulled and j.hlc < cut.normal) or j.hlc < cut.forced
                returning j.txid
            )
            select count(*), max(txid::text::bigint) from d
            """,
            {"ret": retention, "max": max_retention, "bits": clock.COUNTER_BITS},
        ).fetchone()
        if row[0]:
            cloud.execute(
                "update ccsync.prune_horizon set txid = greatest(txid, (%s + 1)::text::xid8), pruned_at = now()",
                (row[1],),
            )
    return row[0]
