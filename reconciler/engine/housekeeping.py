"""Housekeeping of the cloud's journal: entries every registered node has pulled go after a retention period.

Entries older than the maximum retention go even if a node has not pulled them; such a node is told at its
next pull to run `ccsync init --force` (the prune horizon says which transactions may be gone). The rule is
ccsync.prune's; a pull calls it now and then.
"""

from __future__ import annotations

import time

import psycopg

RETENTION_SECONDS = 24 * 3600  # entries every registered node has pulled are kept this long
MAX_RETENTION_SECONDS = 30 * 24 * 3600  # any entry is kept this long

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
    """Delete prunable cloud journal entries (ccsync.prune, which never prunes sooner than the defaults for a PC's
    role); returns how many went."""
    return cloud.execute("select ccsync.prune(%s, %s)", (retention, max_retention)).fetchone()[0]
