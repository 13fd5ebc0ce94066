"""Push-side conflict detection: what a push does with a change whose base no longer holds on the cloud.

Detection is per column against the base the node's change was made on: disjoint columns merge, the same
column changed on both sides, update against delete and two inserts of one key are conflicts. The cloud's
version stays unless the table's policy says otherwise; every conflicting change gets its own record (both
rows, the base, a diff of local against cloud), written on the cloud in the push transaction through
ccsync.record_conflict and journaled for every node. The records themselves, and a person's decisions on
them, are reconciler/conflicts.py's.
"""

from __future__ import annotations

import hashlib

import psycopg
from deepdiff import DeepDiff

from . import apply as _apply
from .apply import Leftover, parse
from .tablesql import Table
from ..kinds import Kind, Policy


BIG_VALUE = 4096  # characters: a longer value is compared and shown in the diff by its size and digest


def diff(local: str | None, cloud: str | None) -> str:
    """The deepdiff of the local row against the cloud row, as JSON text. A large value (a scanned document in
    a bytea) appears as {size, md5}: both rows are in the record whole, and diffing or storing megabytes twice
    more would keep the push transaction, and its row locks, waiting."""
    return DeepDiff(_small(parse(local) or {}), _small(parse(cloud) or {}), verbose_level=2).to_json()


def _small(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        text = v if isinstance(v, str) else None
        if text is not None and len(text) > BIG_VALUE:
            out[k] = {"size": len(text), "md5": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()}
        else:
            out[k] = v
    return out


def _winner(policy: str, local_hlc: int, cloud_hlc: int | None, node: str) -> str:
    if policy == Policy.NODE_WINS:
        return "local"
    if policy == Policy.LATEST_WINS:
        # the cloud's time is gone once its journal entry is pruned: not known to be older, so the cloud's stays
        return "local" if cloud_hlc is not None and (local_hlc, node) > (cloud_hlc, "cloud") else "cloud"
    return "cloud"  # manual and cloud-wins: the cloud's version stays


class Found:
    """The conflicts of one pushed chunk, written once every change of the chunk is applied: one record per
    conflicting change (a row changed twice is two records, as when its changes are pushed one by one). A record
    keeps the cloud's row as the conflicting change left it (its merged columns in, or the policy applied), not as
    the chunk's later changes leave it: what the reference path, one source transaction at a time, records."""

    def __init__(self, node_name: str):
        self.node_name = node_name
        self.rows: list[dict] = []
        self.restore: list[tuple[str, str]] = []  # (table, key) the node reads back from the cloud after the push

    def add(self, t: Table, left: Leftover, kind: str, columns: list[str], local_row, cloud_row, cloud_hlc,
            resolution) -> None:
        self.rows.append({"table": t, "left": left, "kind": kind, "columns": list(columns), "local_row": local_row,
                          "cloud_row": cloud_row, "cloud_hlc": cloud_hlc, "resolution": resolution})

    def write(self, cloud: psycopg.Connection) -> int:
        """Record each conflict, and journal the cloud's final version of its row for the node (once per row)."""
        rows: set[tuple[str, str]] = set()
        for info in self.rows:
            t, left = info["table"], info["left"]
            _record(cloud, self.node_name, t, left, info["kind"], info["columns"], info["local_row"],
                    info["cloud_row"], info["cloud_hlc"], info["resolution"])
        for info in self.rows:  # the cloud's version, for the conflicting node: once per row and key
            t, left = info["table"], info["left"]
            for pk in _keys_to_refresh(cloud, t, left):
                key = (t.name, _apply.key_of(pk))
                if key not in rows:
                    rows.add(key)
                    _journal_refresh(cloud, t, pk)
                    # and read back by the node right after the push: its losing version must not stand in the
                    # way of the cloud's changes it pulls before this one (a key the cloud gave another row meanwhile)
                    self.restore.append((t.name, pk))
        return len(self.rows)


def handle_push_leftover(cloud: psycopg.Connection, node: psycopg.Connection, t: Table, left: Leftover,
                         found: Found) -> None:
    """Decide a change the set-wise push could not apply: merge what can be, apply the policy, note it."""
    present = left.cloud_row is not None
    if left.op == "D":
        if not present:
            return  # deleted on both sides
        kind = Kind.DELETE_UPDATE
    elif left.op == "I":
        if not left.columns:
            return  # the same row is already there
        kind = Kind.INSERT_INSERT
    else:
        kind = Kind.UPDATE_UPDATE if present else Kind.UPDATE_DELETE

    local_row = None
    if left.op != "D":  # the node's row, under the key the change gave it
        at = _apply.new_key(node, t, left.pk, left.new)
        local_row = _apply.fetch_images(node, t, [at]).get(_apply.key_of(at))
        if local_row is None:  # no longer on the node (a cloud TRUNCATE pulled before this push): the change's
            local_row = left.new  # own image keeps the local values
    # the time of the cloud's version: the latest change of the row by another writer (not this node's own changes,
    # nor the cloud's version sent back to one node after a conflict, which is no new write and would make the
    # outcome depend on how many transactions one push applies)
    cloud_hlc = cloud.execute(
        "select max(hlc) from ccsync.journal where table_name = %s and pk = %s::jsonb and origin <> %s "
        "and target is null", (t.name, left.pk, found.node_name)
    ).fetchone()[0]
    winner = _winner(t.policy, left.hlc, cloud_hlc, found.node_name)

    new_cols = list(parse(left.new) or {})
    if kind == Kind.UPDATE_UPDATE:
        merged = [c for c in new_cols if c not in left.columns]
        if winner == "local":
            _apply.apply_columns(cloud, t, left.seq, None)
        elif merged:
            _apply.apply_columns(cloud, t, left.seq, merged)
    elif winner == "local":
        if kind == Kind.UPDATE_DELETE and local_row is not None:
            _apply.upsert_images(cloud, t, [local_row])
        elif kind == Kind.DELETE_UPDATE:
            _apply.delete_keys(cloud, t, [left.pk])
        elif kind == Kind.INSERT_INSERT:
            _apply.upsert_images(cloud, t, [left.new])

    columns = left.columns if kind != Kind.UPDATE_DELETE else sorted(new_cols)
    resolution = None if t.policy == Policy.MANUAL else f"policy {t.policy}: kept {winner}"
    # the PC's version won (a policy): the record keeps the cloud's as it was, the losing one; else the cloud's
    # as this change left it (merged columns in)
    cloud_row = left.cloud_row if winner == "local" else \
        _apply.fetch_images(cloud, t, [left.pk]).get(_apply.key_of(left.pk))
    found.add(t, left, kind, columns, local_row, cloud_row, cloud_hlc, resolution)


def truncate_step(cloud: psycopg.Connection, node: psycopg.Connection, tables: dict[str, Table], step: int,
                  found: Found) -> int:
    """A node's TRUNCATE: the rows it had are emptied on the cloud (apply.truncate_seen_step); a kept row that the
    node had an earlier version of is a delete_update conflict (the table's policy decides), and the node reads it
    back from the cloud right after the push (before a pull brings the rows that refer to it); a row the cloud
    wrote after the node's position is the node's next pull."""
    done, hlc, kept = _apply.truncate_seen_step(cloud, tables, step, found.node_name)
    for k in kept:
        if k.had:
            found.restore.append((k.table, k.pk))
            left = Leftover(seq=0, op="D", pk=k.pk, old=None, new=None, hlc=hlc, cloud_row=k.image, columns=[])
            handle_push_leftover(cloud, node, tables[k.table], left, found)
    return done


def _record(cloud, node_name, t, left, kind, columns, local_row, cloud_row, cloud_hlc, resolution) -> None:
    # the cloud records it for the node of the connected role, and journals it for every node
    cloud.execute(
        "select ccsync.record_conflict(%(table)s, %(pk)s::jsonb, %(kind)s, %(columns)s, %(local)s::jsonb, "
        "%(cloud)s::jsonb, %(base)s::jsonb, %(diff)s::jsonb, %(lhlc)s, %(chlc)s, %(resolution)s)",
        {
            "table": t.name, "pk": left.pk, "kind": kind, "columns": list(columns),
            "local": local_row, "cloud": cloud_row, "base": left.old,
            "diff": diff(local_row, cloud_row), "lhlc": left.hlc, "chlc": cloud_hlc, "resolution": resolution,
        },
    )


def _keys_to_refresh(cloud, t: Table, left: Leftover) -> list[str]:
    """Where the conflicting node's row must be brought in line with the cloud: the change's key, the key the
    change gave the row (a key change of the node: the cloud has no row there), and the key the cloud moved the
    row to (the node's pull of that move found no row, or moved the node's losing version)."""
    keys = [left.pk]
    if left.op == "U":
        keys.append(_apply.new_key(cloud, t, left.pk, left.new))
    if not _apply.fetch_images(cloud, t, [left.pk]):
        moved = _apply.moved(cloud, t, left.pk)
        if moved is not None:
            keys.append(moved[0])
    return keys


def _journal_refresh(cloud, t: Table, pk: str) -> None:
    """Journal the row as the cloud now has it, for the conflicting node only (target): it takes the whole
    row, including a row it had deleted. The other nodes get every change the push made from the trigger."""
    cloud.execute("select ccsync.journal_for_node(%s, %s::jsonb)", (t.name, pk))


TABLE = "ccsync.conflicts"


def decide_step(cloud: psycopg.Connection, step: int) -> int:
    """A pushed step of decisions (a person decided records on the node, which updated them): each goes to
    ccsync.decide, which applies the first decision of a record and a revisit of the decision in force, and
    refuses any other (SQLSTATE 23C01: the push then refuses its whole source transaction)."""
    cloud.execute(
        "select ccsync.decide((s.pk ->> 'id')::bigint, s.new, coalesce(s.old, '{}')) from ccsync_stage s "
        "where s.step = %s order by s.seq",
        (step,),
    )
    return cloud.execute("update ccsync_stage set done = true where step = %s", (step,)).rowcount
