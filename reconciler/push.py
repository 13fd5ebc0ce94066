"""Push: the node's journal, applied on the cloud in commit order, exactly once.

The node's position (a node snapshot, plus the progress inside the window being applied) lives on the
cloud, in ccsync.nodes, and moves in the same cloud transaction as the changes it covers.
"""

from __future__ import annotations

import os
import time

import psycopg

from . import _apply, _journal, conflicts
from ._faults import checkpoint
from ._sides import Sides, check_drift, tracked_tables
from .errors import CcsyncError

CHUNK = int(os.environ.get("CCSYNC_CHUNK", 50_000))  # entries per cloud transaction (a larger source transaction is never split)


def run(sides: Sides, *, progress=None, chunk: int = CHUNK) -> dict:
    node, cloud, name = sides.node, sides.cloud, sides.name
    started = time.monotonic()
    cloud_tables = tracked_tables(cloud, sides.tables)
    check_drift(tracked_tables(node, sides.tables), cloud_tables)
    totals = {"changes": 0, "transactions": 0, "conflicts": 0}
    _forget_pushed(node, cloud, name)
    resumed = None
    while True:
        with cloud.transaction():
            pos = cloud.execute(
                "select push_snapshot::text, push_window::text, push_done_upto from ccsync.nodes "
                "where name = %s for update",
                (name,),
            ).fetchone()
            if pos is None:
                raise CcsyncError(f"node {name!r} is not registered on the cloud: run `ccsync init` first")
            since, window_upto, done = pos
            if resumed is None:
                resumed = window_upto is not None
            upto = window_upto or _journal.current_snapshot(node)
            window = _journal.Window(since, upto, done or 0)
            txns = _journal.transactions(node, window)
            if progress and not totals["changes"]:
                progress.start("push", sum(t[2] for t in txns))
            if not txns:
                cloud.execute(
                    "update ccsync.nodes set push_snapshot = %s::pg_snapshot, push_window = null, "
                    "push_done_upto = null, last_push_at = now() where name = %s",
                    (upto, name),
                )
                if resumed:
                    resumed = False
                    continue
                break
            batch = _journal.chunks(txns, chunk)[0]
            end = batch[-1][1]
            outcome = _apply_chunk(node, cloud, window, batch, cloud_tables, name)
            checkpoint("push.applied")
            last = end == txns[-1][1]
            cloud.execute(
                "update ccsync.nodes set push_snapshot = case when %(last)s then %(upto)s::pg_snapshot "
                "else push_snapshot end, push_window = case when %(last)s then null else %(upto)s::pg_snapshot end, "
                "push_done_upto = case when %(last)s then null else %(end)s end, last_push_at = now() "
                "where name = %(name)s",
                {"last": last, "upto": upto, "end": end, "name": name},
            )
        checkpoint("push.committed")
        # committed on the cloud: the entries may leave the node's journal (a crash here only delays it)
        node.execute("delete from ccsync.journal where txid between %s::text::xid8 and %s::text::xid8 "
                     "and txid = any(string_to_array(%s, ',')::xid8[])",
                     (str(min(t[0] for t in batch)), str(max(t[0] for t in batch)), ",".join(str(t[0]) for t in batch)))
        checkpoint("push.forgotten")
        totals["changes"] += outcome.changes
        totals["transactions"] += len(batch)
        totals["conflicts"] += outcome.conflicts
        if progress:
            progress.advance(outcome.changes)
        if last and resumed:
            resumed = False  # that finished a window an interrupted run left; now what came after it
            continue
        if last:
            break
    _forget_pushed(node, cloud, name)  # chunks an interrupted run applied but could not forget
    totals["seconds"] = round(time.monotonic() - started, 3)
    return totals


def _forget_pushed(node, cloud, name) -> None:
    """Entries the cloud already holds (a crash after the cloud commit) leave the node's journal."""
    row = cloud.execute("select push_snapshot::text from ccsync.nodes where name = %s", (name,)).fetchone()
    if row and row[0]:
        node.execute(
            "delete from ccsync.journal where txid < pg_snapshot_xmax(%s::pg_snapshot) "
            "and pg_visible_in_snapshot(txid, %s::pg_snapshot)",
            (row[0], row[0]),
        )


class _Outcome:
    def __init__(self, changes: int, conflicts: int):
        self.changes, self.conflicts = changes, conflicts


def _apply_chunk(node, cloud, window, batch, tables, name) -> _Outcome:
    """Cut as boldly as possible first; if the cloud rejects a statement, the same chunk again, cut finer."""
    mode = _journal.MODES[0]
    while True:
        plan = _journal.plan(node, window, batch, mode)
        try:
            with cloud.transaction():
                return _apply_staged(node, cloud, window, batch, plan, tables, name)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            if plan.mode == "exact" or isinstance(exc, psycopg.errors.DataError):
                raise CcsyncError(
                    f"the cloud rejected a change ({exc.diag.message_primary}"
                    f"{'; ' + exc.diag.message_detail if exc.diag.message_detail else ''}): the batch stays "
                    "pending; fix the data or the constraint, then sync again"
                ) from None
            mode = _journal.MODES[_journal.MODES.index(plan.mode) + 1]


def _apply_staged(node, cloud, window, batch, plan, tables, name) -> _Outcome:
    changes = _journal.stage(node, cloud, window, batch, plan)
    checkpoint("push.staged")
    cloud.execute("select set_config('ccsync.origin', %s, true), "
                  "ccsync.hlc_observe((select max(hlc) from ccsync_stage))", (name,))
    found = conflicts.Found(name)
    for step in plan.steps:
        t = tables.get(step.table)
        if t is None:
            raise CcsyncError(f"{step.table} is not tracked on the cloud: track it there, or untrack it on this node")
        if step.op == "T":
            done = _apply.truncate_step(cloud, tables, step.number) if not _apply.truncated(cloud, step.number) else 0
        elif plan.mode != "exact" and _apply.fast_step(cloud, t, step, push=True):
            done = step.count
        elif step.op == "U":
            done = _apply.update_step(cloud, t, step.number, check_base=True)
        elif step.op == "I":
            done = _apply.insert_step(cloud, t, step.number, upsert=False)
        else:
            done = _apply.delete_step(cloud, t, step.number, check_base=True)
        checkpoint("push.step")
        if done < step.count:
            for left in _apply.leftovers(cloud, t, step.number):
                conflicts.handle_push_leftover(cloud, node, t, left, found)
                checkpoint("push.conflict")
    recorded = found.write(cloud)
    return _Outcome(changes, recorded)
