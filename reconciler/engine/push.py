"""Push: the node's journal, applied on the cloud in commit order, exactly once.

The node's position (a node snapshot, plus the progress inside the window being applied) lives on the
cloud, in ccsync.nodes, and moves in the same cloud transaction as the changes it covers.
"""

from __future__ import annotations

import time
from collections import Counter

from psycopg import sql
from psycopg.rows import class_row

from . import apply as _apply, drain as _drain, journal as _journal, initial_copy as snapshot, refusals
from . import cascades, detect
from .faults import checkpoint
from .sides import Sides, check_drift, register_once, tracked_tables
from ..errors import CcsyncError


class _Push(_drain.Direction):
    name = "push"
    rejected = "the cloud rejected a change"

    def __init__(self, sides: Sides, tables: dict, node_tables: dict):
        self.src, self.dst, self.node_name, self.tables = sides.node, sides.cloud, sides.name, tables
        self.node_tables, self.reference = node_tables, sides.reference
        self._net: dict | None | bool = False  # not read yet
        # (table, key) of the chunk's refused rows, and of rows a TRUNCATE of the node left on the cloud: read back
        # once committed
        self.refused_keys: list[list[str]] = []
        self.watch: cascades.Watch | None = None  # the cloud's foreign-key actions, read at the first chunk

    @property
    def net(self) -> dict | None:
        """What may go as a net change, from the cloud's catalog: read once per push, at its first plan (about 15 ms
        of catalog queries that a push with nothing to send, most of the service's, does not pay)."""
        if self._net is False:
            self._net = None if self.reference else _journal.net_columns(self.dst, self.src, self.tables,
                                                                         self.node_tables)
        return self._net

    def position(self):
        self.refused_keys = []  # a chunk starts (again)
        with self.dst.cursor(row_factory=class_row(_drain.Position)) as cur:
            pos = cur.execute("select push_snapshot as since, push_window as window, push_done_upto as done_upto "
                              "from ccsync.push_position()").fetchone()
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
        found = detect.Found(name)
        tables = _apply.check_columns(cloud, self.tables, "the cloud")
        if self.watch is None:
            self.watch = cascades.Watch(cloud, self.tables)
        for step in plan.steps:
            if tables.get(step.table) is None:
                raise CcsyncError(f"{step.table} is not tracked on the cloud: track it there, or untrack it on this node")
        together = set()  # deletes of several tables that follow each other, applied in one statement
        for i, step in enumerate(plan.steps):
            t = tables[step.table]
            if step.number in together:
                checkpoint("push.step")
                continue
            run = _apply.delete_run(plan.steps, i) if i == 0 or plan.steps[i - 1].op != "D" else []
            if len({s.table for s in run}) > 1 and not any(self.watch.fires(s) for s in run) \
                    and _apply.delete_together(cloud, [(tables[s.table], s) for s in run], push=True):
                together.update(s.number for s in run)
                checkpoint("push.step")
                continue
            watched = self.watch.fires(step)
            mark = self.watch.mark(cloud) if watched else 0
            if step.op == "T":
                done = step.count if _apply.truncated(cloud, step.number) else \
                    detect.truncate_step(cloud, node, tables, step.number, found)
            elif step.table == detect.TABLE and step.op == "U":
                if plan.mode == "net" and step.entries > step.count:
                    raise _journal.NetRefused  # decisions are taken one by one
                done = detect.decide_step(cloud, step.number)
            elif plan.mode != "exact" and _apply.fast_step(cloud, t, step, push=True):
                done = step.count
            elif plan.mode == "net":
                raise _journal.NetRefused  # a net row's first base does not hold here: the changes one by one
            elif step.op == "U":
                done = _apply.update_step(cloud, t, step.number, check_base=True)
            elif step.op == "I":
                done = _apply.insert_step(cloud, t, step.number)
            else:
                done = _apply.delete_step(cloud, t, step.number, check_base=True)
            checkpoint("push.step")
            handled = []
            if done < step.count:
                for left in _apply.leftovers(cloud, t, step.number):
                    detect.handle_push_leftover(cloud, node, t, left, found)
                    handled.append((t.name, left.pk))
                    checkpoint("push.conflict")
            if watched:  # rows the cloud's ON DELETE CASCADE / SET NULL removed or unlinked: the PC had seen them
                self.watch.check(cloud, step, mark, handled)
        conflicts = found.write(cloud)
        self.refused_keys += [[table, pk] for table, pk in found.restore]
        return Counter(changes=plan.changes, conflicts=conflicts)

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
        # rows inserted before an ALTER TABLE (a column more or less than the cloud's): the staged way, which
        # gives a missing column its default and stops on a column the cloud does not have
        odd = node.execute(sql.SQL("select exists (select 1 from ccsync.journal j where {w} and {wanted} and "
                                   "(not j.new ?& %(writable)s::text[] or j.new - %(cols)s::text[] <> '{{}}'))").format(
            w=sql.SQL(_journal.WINDOW), wanted=sql.SQL(_journal.WANTED)),
            window.params(writable=[c.name for c in t.writable], cols=t.column_names)).fetchone()[0]
        if odd:
            return None
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

    def refuse(self, window, tx, exc):
        """Keep the refused transaction in a record on the cloud; its rows here (a refused decision's record too)
        are read back from the cloud once this commits (the refresh after the push)."""
        refused = refusals.read(self.src, tx.txid, self.node_name)
        refusals.record(self.dst, refused, refusals.reason(self.dst, refused, exc))
        self.refused_keys += refused.keys
        # a refused TRUNCATE: every row of its tables, here and on the cloud, is read back
        for name in refusals.truncated(refused):
            t = self.tables.get(name)
            if t is not None:
                self.refused_keys += [[name, k] for k in _apply.all_keys(self.dst, t) + _apply.all_keys(self.src, t)]
        return Counter(refused=1)

    def committed(self, chunk):
        keys, self.refused_keys = self.refused_keys, []
        if keys:
            self.src.execute(
                "insert into ccsync.refresh (table_name, pk) select t, k::jsonb from unnest(%s::text[], %s::text[]) "
                "as u(t, k) on conflict do nothing",
                ([name for name, _ in keys], [key for _, key in keys]),
            )
        # committed on the cloud: the entries may leave the node's journal (a crash here only delays it);
        # a whole window leaves by its snapshot, in _forget_pushed at the end of the run
        if not chunk.whole:
            txids = chunk.txids
            self.src.execute(
                "delete from ccsync.journal where txid between %s::text::xid8 and %s::text::xid8 "
                "and txid = any(string_to_array(%s, ',')::xid8[])",
                (str(min(txids)), str(max(txids)), ",".join(map(str, txids))),
            )
        checkpoint("push.forgotten")


def run(sides: Sides, *, progress=None, chunk: int = _drain.CHUNK) -> dict:
    started = time.monotonic()
    register_once(sides)
    cloud_tables = tracked_tables(sides.cloud, sides.tables)
    node_tables = tracked_tables(sides.node, sides.tables)
    check_drift(node_tables, cloud_tables)
    if "forgotten" not in sides.once:  # (a run of these sides that ended, ended with the forget below)
        _forget_pushed(sides.node, sides.cloud, sides.name)
    totals = _drain.drain(_Push(sides, cloud_tables, node_tables), progress=progress, chunk=chunk,
                          reference=sides.reference)
    _forget_pushed(sides.node, sides.cloud, sides.name)  # whole windows, and what an interrupted run could not forget
    sides.once.add("forgotten")
    return {"changes": totals["changes"], "transactions": totals["transactions"], "conflicts": totals["conflicts"],
            "refused": totals["refused"],
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
