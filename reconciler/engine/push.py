"""Push: the node's journal, applied on the cloud in commit order, exactly once.

The node's position (a node snapshot, plus the progress inside the window being applied) lives on the
cloud, in ccsync.nodes, and moves in the same cloud transaction as the changes it covers.
"""

from __future__ import annotations

import time
from collections import Counter

from psycopg import sql

from . import apply as _apply, drain as _drain, journal as _journal, initial_copy as snapshot
from .. import conflicts
from .faults import checkpoint
from .sides import Sides, check_drift, register, tracked_tables
from ..errors import CcsyncError


class _Push:
    name = "push"
    rejected = "the cloud rejected a change"

    def __init__(self, sides: Sides, tables: dict):
        self.src, self.dst, self.node_name, self.tables = sides.node, sides.cloud, sides.name, tables

    def position(self):
        pos = self.dst.execute("select * from ccsync.push_position()").fetchone()
        if pos is None:
            raise CcsyncError(f"node {self.node_name!r} is not registered on the cloud: run `ccsync init` first")
        return pos

    def window(self, since, upto, done):
        return _journal.Window(since, upto, done)

    def close(self, upto):
        self.dst.execute("select ccsync.push_store(%s::pg_snapshot, true, null)", (upto,))

    def store(self, last, upto, end):
        self.dst.execute("select ccsync.push_store(%s::pg_snapshot, %s, %s)", (upto, last, end))

    def apply(self, plan):
        cloud, node, name = self.dst, self.src, self.node_name
        # the cloud's capture triggers journal what the push applies, stamped with this node (its role)
        cloud.execute("select ccsync.hlc_observe(%s)", (plan.top_hlc,))
        found = conflicts.Found(name)
        for step in plan.steps:
            t = self.tables.get(step.table)
            if t is None:
                raise CcsyncError(f"{step.table} is not tracked on the cloud: track it there, or untrack it on this node")
            if step.op == "T":
                done = 0 if _apply.truncated(cloud, step.number) else _apply.truncate_step(cloud, self.tables, step.number)
            elif step.table == conflicts.TABLE and step.op == "U":
                done = conflicts.decide_step(cloud, step.number)
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
        return Counter(changes=plan.changes, conflicts=found.write(cloud))

    def direct(self, window, summary):
        """A window that only inserts new rows into one table (a bulk import, new records made offline) goes
        straight into the cloud's table with one COPY of typed rows (the cloud's capture trigger journals
        them): no staging table, no JSON parsed for the table. A key the cloud already holds (an insert_insert
        conflict), or a key inserted twice in the window (deleted in between by a pull), makes the COPY fail
        on the primary key: rolled back, the window then goes the staged way."""
        count, top = summary.entries, summary.top_hlc
        t = self.tables.get(summary.inserts_into)
        if t is None:
            return None
        cloud, node = self.dst, self.src
        cloud.execute("select ccsync.hlc_observe(%s)", (top,))
        fmt = sql.SQL(snapshot.copy_format(t, cloud))
        rows = sql.SQL(
            "copy (select {vals} from ccsync.journal j where {window} and {wanted}) to stdout (format {f})"
        ).format(vals=sql.SQL(", ").join(t.typed(c, "j.new") for c in t.writable),
                 window=sql.SQL(_journal.WINDOW), wanted=sql.SQL(_journal.WANTED), f=fmt)
        _journal.relay(node, rows, window.params(), cloud,
               sql.SQL("copy {T} ({cols}) from stdin (format {f})").format(T=t.ident, cols=t.insert_columns(), f=fmt))
        checkpoint("push.staged")
        checkpoint("push.step")
        return Counter(changes=count, conflicts=0)

    def committed(self, batch, whole):
        # committed on the cloud: the entries may leave the node's journal (a crash here only delays it);
        # a whole window leaves by its snapshot, in _forget_pushed at the end of the run
        if not whole:
            txids = [t[0] for t in batch]
            self.src.execute(
                "delete from ccsync.journal where txid between %s::text::xid8 and %s::text::xid8 "
                "and txid = any(string_to_array(%s, ',')::xid8[])",
                (str(min(txids)), str(max(txids)), ",".join(map(str, txids))),
            )
        checkpoint("push.forgotten")


def run(sides: Sides, *, progress=None, chunk: int = _drain.CHUNK) -> dict:
    started = time.monotonic()
    register(sides.node, sides.cloud, sides.name)
    cloud_tables = tracked_tables(sides.cloud, sides.tables)
    check_drift(tracked_tables(sides.node, sides.tables), cloud_tables)
    _forget_pushed(sides.node, sides.cloud, sides.name)
    totals = _drain.drain(_Push(sides, cloud_tables), progress=progress, chunk=chunk)
    _forget_pushed(sides.node, sides.cloud, sides.name)  # whole windows, and what an interrupted run could not forget
    return {"changes": totals["changes"], "transactions": totals["transactions"], "conflicts": totals["conflicts"],
            "seconds": round(time.monotonic() - started, 3)}


def _forget_pushed(node, cloud, name) -> None:
    """Entries the cloud already holds (a crash after the cloud commit) leave the node's journal."""
    row = cloud.execute("select push_snapshot::text from ccsync.nodes where name = ccsync.caller_node()").fetchone()
    if row and row[0]:
        node.execute(
            "delete from ccsync.journal where txid < pg_snapshot_xmax(%s::pg_snapshot) "
            "and pg_visible_in_snapshot(txid, %s::pg_snapshot)",
            (row[0], row[0]),
        )
