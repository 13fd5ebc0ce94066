"""Pull: the cloud's journal since this node's position, minus what this node originated, applied here.

The position (a cloud snapshot) lives in the node's ccsync.state and moves in the same node transaction
as the changes. A row with a local change not yet pushed is left alone (the push decides it) and
remembered in ccsync.refresh, to be read again from the cloud once that change is pushed.
"""

from __future__ import annotations

import time
from collections import Counter

from . import apply as _apply, drain as _drain, journal as _journal, housekeeping
from .faults import checkpoint
from .sides import Sides, check_drift, register, tracked_tables
from ..errors import CcsyncError

def pending_count(sides: Sides) -> int:
    """Cloud changes this node has not pulled yet (counting a half-applied window whole)."""
    since, window_upto, _ = _position(sides.node)
    if since is None and window_upto is None:
        raise CcsyncError("this node has never been initialized: run `ccsync init` first")
    window = _journal.Window(since, _journal.current_snapshot(sides.cloud), 0, sides.name, _skips(sides.node))
    return sum(t[2] for t in _journal.transactions(sides.cloud, window))


def _position(node) -> tuple[str | None, str | None, int | None]:
    return node.execute(
        "select pull_snapshot::text, pull_window::text, pull_done_upto from ccsync.state"
    ).fetchone()


def _skips(node) -> dict[str, str]:
    return dict(node.execute("select table_name, snapshot::text from ccsync.init_progress"))


class _Pull:
    name = "pull"
    rejected = "this node rejected a cloud change"

    def __init__(self, sides: Sides, tables: dict):
        self.src, self.dst, self.node_name, self.tables = sides.cloud, sides.node, sides.name, tables

    def position(self):
        pos = self.dst.execute(
            "select pull_snapshot::text, pull_window::text, pull_done_upto from ccsync.state for update"
        ).fetchone()
        if pos[0] is None and pos[1] is None:
            raise CcsyncError("this node has never been initialized: run `ccsync init` first")
        return pos

    def window(self, since, upto, done):
        return _journal.Window(since, upto, done, self.node_name, _skips(self.dst))

    def close(self, upto):
        self.dst.execute(
            "update ccsync.state set pull_snapshot = %s::pg_snapshot, pull_window = null, "
            "pull_done_upto = null, updated_at = now()",
            (upto,),
        )
        _forget_covered_copies(self.dst, upto)

    def store(self, last, upto, end):
        self.dst.execute(
            "update ccsync.state set pull_snapshot = case when %(last)s then %(upto)s::pg_snapshot "
            "else pull_snapshot end, pull_window = case when %(last)s then null else %(upto)s::pg_snapshot end, "
            "pull_done_upto = case when %(last)s then null else %(end)s end, updated_at = now()",
            {"last": last, "upto": upto, "end": end},
        )
        if last:
            _forget_covered_copies(self.dst, upto)

    def apply(self, plan):
        node = self.dst
        _apply.applying(node, True)  # nothing a pull applies is journaled here (no echo)
        skipped = _skip_pending(node, self.tables)
        for step in plan.steps:
            t = self.tables.get(step.table)
            if t is None:
                raise CcsyncError(f"{step.table} changed on the cloud but is not tracked here: run `ccsync init`")
            if step.op == "T":
                if not _apply.truncated(node, step.number):
                    _apply.truncate_step(node, self.tables, step.number)
            else:
                _apply.fast_step(node, t, step, push=False)
            checkpoint("pull.step")
        node.execute("select ccsync.hlc_observe(%s)", (plan.top_hlc,))
        return Counter(changes=plan.changes, skipped=skipped)

    def committed(self, batch, whole):
        pass


def run(sides: Sides, *, progress=None, chunk: int = _drain.CHUNK) -> dict:
    node, cloud, name = sides.node, sides.cloud, sides.name
    started = time.monotonic()
    register(node, cloud, name)
    node_tables = tracked_tables(node, sides.tables)
    check_drift(node_tables, tracked_tables(cloud, sides.tables))
    _check_horizon(node, cloud)
    totals = _drain.drain(_Pull(sides, node_tables), progress=progress, chunk=chunk)
    _report_position(node, cloud, name)
    return {"changes": totals["changes"], "transactions": totals["transactions"], "conflicts": 0,
            "skipped": totals["skipped"], "pruned": housekeeping.prune_now_and_then(cloud),
            "seconds": round(time.monotonic() - started, 3)}


def _forget_covered_copies(node, upto: str) -> None:
    """A table copied by init at a snapshot the position now covers needs no more filtering."""
    node.execute(
        "delete from ccsync.init_progress where pg_snapshot_xmax(snapshot) <= pg_snapshot_xmin(%s::pg_snapshot) "
        "and exists (select 1 from ccsync.state where initialized_at is not null)",
        (upto,),
    )


def _report_position(node, cloud, name) -> None:
    """Tell the cloud how far this node has pulled, so that it may prune what every node has."""
    since = node.execute("select pull_snapshot::text from ccsync.state").fetchone()[0]
    cloud.execute("select ccsync.report_pulled(%s::pg_snapshot)", (since,))


def _check_horizon(node, cloud) -> None:
    since = node.execute("select pull_snapshot::text from ccsync.state").fetchone()[0]
    if since is None:
        return
    behind = cloud.execute(
        "select pg_snapshot_xmin(%s::pg_snapshot) < txid from ccsync.prune_horizon", (since,)
    ).fetchone()[0]
    if behind:
        raise CcsyncError(
            "this node is too far behind: the cloud has pruned changes it never pulled; "
            "run `ccsync init --force` to copy the cloud again"
        )


def _skip_pending(node, tables) -> int:
    """Leave alone the rows that carry a local change not pushed yet, and remember them for a refresh.

    So are the rows this node changed itself in the same window (own_touch): their final cloud version
    is read back by the refresh rather than rebuilt from changes around the node's own, which it skips.
    """
    node.execute("update ccsync_stage set skipped = true where own_touch and op <> 'T'")
    if not node.execute("select exists (select 1 from ccsync.journal)").fetchone()[0]:
        node.execute(
            "insert into ccsync.refresh (table_name, pk) select distinct table_name, pk from ccsync_stage "
            "where skipped on conflict do nothing"
        )
        return node.execute("select count(*) from ccsync_stage where skipped").fetchone()[0]
    from psycopg import sql

    names = [r[0] for r in node.execute("select distinct table_name from ccsync_stage where op <> 'T'")]
    for name in names:
        t = tables.get(name)
        if t is None:
            continue
        # lock first: a local writer that already changed the row has committed its journal entry by then
        node.execute(
            sql.SQL(
                "select 1 from ccsync_stage s join {T} t on {m} where s.table_name = %s for update of t"
            ).format(T=t.ident, m=t.key_match()),
            (name,),
        )
    node.execute(
        "update ccsync_stage s set skipped = true where s.op <> 'T' and exists "
        "(select 1 from ccsync.journal j where j.table_name = s.table_name and j.pk = s.pk)"
    )
    node.execute(
        "insert into ccsync.refresh (table_name, pk) select distinct table_name, pk from ccsync_stage "
        "where skipped on conflict do nothing"
    )
    # a truncate from the cloud empties the table: the rows with a pending local change come back by refresh
    node.execute(
        "insert into ccsync.refresh (table_name, pk) select distinct j.table_name, j.pk from ccsync.journal j "
        "where j.pk is not null and j.table_name in (select table_name from ccsync_stage where op = 'T') "
        "on conflict do nothing"
    )
    return node.execute("select count(*) from ccsync_stage where skipped").fetchone()[0]


def refresh(sides: Sides) -> int:
    """Re-read from the cloud the rows a pull skipped, once their local changes have been pushed."""
    node, cloud = sides.node, sides.cloud
    rows = node.execute(
        "select r.table_name, r.pk::text from ccsync.refresh r where not exists "
        "(select 1 from ccsync.journal j where j.table_name = r.table_name and j.pk = r.pk)"
    ).fetchall()
    if not rows:
        return 0
    tables = tracked_tables(node, sides.tables)
    by_table: dict[str, list[str]] = {}
    for name, pk in rows:
        by_table.setdefault(name, []).append(pk)
    done = 0
    for name, keys in by_table.items():
        t = tables.get(name)
        if t is None:
            node.execute("delete from ccsync.refresh where table_name = %s", (name,))
            continue
        images = _apply.fetch_images(cloud, t, keys)
        with node.transaction():
            _apply.applying(node, True)
            _apply.lock_keys(node, t, keys)  # a local writer on these rows has committed its journal entry now
            still = {
                _apply.key_of(r[0])
                for r in node.execute(
                    "select pk::text from ccsync.journal where table_name = %s", (name,)
                )
            }
            keys = [k for k in keys if _apply.key_of(k) not in still]
            present = [images[_apply.key_of(k)] for k in keys if _apply.key_of(k) in images]
            missing = [k for k in keys if _apply.key_of(k) not in images]
            _apply.upsert_images(node, t, present)
            _apply.delete_keys(node, t, missing)
            checkpoint("refresh.applied")
            node.execute(
                "delete from ccsync.refresh where table_name = %s and pk = any(%s::jsonb[])", (name, keys)
            )
            done += len(keys)
    return done
