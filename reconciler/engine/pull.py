"""Pull: the cloud's journal since this node's position, minus what this node originated, applied here.

The position (a cloud snapshot) lives in the node's ccsync.state and moves in the same node transaction
as the changes. A row with a local change not yet pushed is left alone (the push decides it) and
remembered in ccsync.refresh, to be read again from the cloud once that change is pushed.
"""

from __future__ import annotations

import time
from collections import Counter

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from . import apply as _apply, drain as _drain, journal as _journal, housekeeping, initial_copy
from .faults import checkpoint
from .sides import Sides, check_drift, register_once, tracked_tables
from ..errors import CcsyncError

def pending_count(sides: Sides) -> int:
    """Cloud changes this node has not pulled yet (counting a half-applied window whole)."""
    pos = _position(sides.node)
    if pos.since is None and pos.window is None:
        raise CcsyncError("this node has never been initialized: run `ccsync init` first")
    window = _journal.Window(pos.since, _journal.current_snapshot(sides.cloud), 0, sides.name, _skips(sides.node))
    return sum(t.entries for t in _journal.transactions(sides.cloud, window))


def _position(node, *, lock: bool = False) -> _drain.Position:
    with node.cursor(row_factory=class_row(_drain.Position)) as cur:
        return cur.execute(
            "select pull_snapshot::text as since, pull_window::text as window, pull_done_upto as done_upto "
            "from ccsync.state" + (" for update" if lock else "")).fetchone()


def _skips(node) -> dict[str, str]:
    return dict(node.execute("select table_name, snapshot::text from ccsync.init_progress"))


class _Pull(_drain.Direction):
    name = "pull"
    rejected = "this node rejected a cloud change"

    def __init__(self, sides: Sides, tables: dict):
        self.src, self.dst, self.node_name, self.tables = sides.cloud, sides.node, sides.name, tables

    def position(self):
        pos = _position(self.dst, lock=True)
        if pos.since is None and pos.window is None:
            raise CcsyncError("this node has never been initialized: run `ccsync init` first")
        return pos

    def window(self, since, upto, done):
        self._window = _journal.Window(since, upto, done, self.node_name, _skips(self.dst))
        return self._window

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

    def prepare(self, plan):
        """The tables the chunk truncates, locked before any of its rows is locked or written (lock_for_truncate):
        a row the pull deleted before its TRUNCATE waited for an application transaction, or a table it truncated
        first, was one the application's COMMIT waited for in turn (a deadlock)."""
        truncated = dict.fromkeys(s.table for s in plan.steps if s.op == "T" and s.table in self.tables)
        if truncated:
            _apply.lock_for_truncate(self.dst, [self.tables[n] for n in truncated])

    def apply(self, plan):
        node = self.dst
        _apply.applying(node, True)  # nothing a pull applies is journaled here (no echo)
        tables = _apply.check_columns(node, self.tables, "this PC")
        own = []
        if node.execute("select exists (select 1 from ccsync_stage where op = 'T')").fetchone()[0]:
            own = _journal.own_rows(self.src, self._window)
        skipped = _skip_pending(node, self.tables, own)
        for step in plan.steps:
            if tables.get(step.table) is None:
                raise CcsyncError(f"{step.table} changed on the cloud but is not tracked here: run `ccsync init`")
        steps, i = plan.steps, 0
        while i < len(steps):
            step, t = steps[i], tables[steps[i].table]
            run = _apply.delete_run(steps, i)
            if len({s.table for s in run}) > 1:  # deletes of several tables, one after the other: one statement
                _apply.delete_together(node, [(tables[s.table], s) for s in run])
                i += len(run)
                checkpoint("pull.step")
                continue
            if step.op == "T":
                if not _apply.truncated(node, step.number):
                    _apply.truncate_step(node, self.tables, step.number)
            else:
                _apply_step(node, t, step)
            i += 1
            checkpoint("pull.step")
        node.execute("select ccsync.hlc_observe(%s)", (plan.top_hlc,))
        return Counter(changes=plan.changes, skipped=skipped)

    def refuse(self, window, tx, exc):
        """A cloud transaction this node's constraints refuse. With local changes waiting for the push (a row it
        refers to deleted here), or rows this node changed itself in the window (skipped: the refresh reads them,
        so the rows that follow them in the transaction, a cascade's, find them missing), they are in its way:
        its rows are read back from the cloud (ccsync.refresh), and the pull moves on. Otherwise the cloud's
        version is the truth and this node's constraint is wrong: the batch stays pending, with one clear line."""
        node = self.dst
        if not node.execute("select exists (select 1 from ccsync.journal)").fetchone()[0] \
                and not _journal.own_rows(self.src, window):
            raise CcsyncError(
                f"{self.rejected} ({exc.diag.message_primary}): the batch stays pending; fix the constraint on "
                "this PC, then sync again"
            )
        keys = self.src.execute(_TX_KEYS, {"txid": str(tx.txid), "node": self.node_name}).fetchall()
        for (name,) in self.src.execute(_TX_TRUNCATED, {"txid": str(tx.txid), "node": self.node_name}).fetchall():
            t = self.tables.get(name)  # a refused TRUNCATE: every row of the table, here and on the cloud
            if t is not None:
                keys += [(name, k) for k in _apply.all_keys(node, t) + _apply.all_keys(self.src, t)]
        node.execute(
            "insert into ccsync.refresh (table_name, pk) select t, k::jsonb from unnest(%s::text[], %s::text[]) "
            "as u(t, k) on conflict do nothing", ([name for name, _ in keys], [key for _, key in keys]))
        return Counter(skipped=len(keys))


# the rows a cloud transaction touched (keys before and after a key change), for a refresh
_TX_KEYS = """
select distinct j.table_name, k.pk::text
  from ccsync.journal j
  left join ccsync.tracked t on t.table_name = j.table_name
  cross join lateral (select case when j.op = 'U' then ccsync.changed(j.old, j.new) end as ch) d
  cross join lateral (values (j.pk), (case when d.ch ?| t.pk_columns then j.pk || (select jsonb_object_agg(c, d.ch -> c)
                                       from unnest(t.pk_columns) c where d.ch ? c) end)) as k(pk)
 where j.txid = %(txid)s::text::xid8 and j.origin <> %(node)s and (j.target is null or j.target = %(node)s)
   and k.pk is not null
"""


_TX_TRUNCATED = """
select distinct j.table_name from ccsync.journal j
 where j.txid = %(txid)s::text::xid8 and j.op = 'T' and j.origin <> %(node)s and (j.target is null or j.target = %(node)s)
"""


def run(sides: Sides, *, progress=None, chunk: int = _drain.CHUNK) -> dict:
    node, cloud, name = sides.node, sides.cloud, sides.name
    started = time.monotonic()
    register_once(sides)
    node_tables = tracked_tables(node, sides.tables)
    check_drift(node_tables, tracked_tables(cloud, sides.tables))
    _check_horizon(node, cloud)
    retracked = _retracked(node, cloud)
    if retracked:
        initial_copy.resync(sides, retracked)
    totals = _drain.drain(_Pull(sides, node_tables), progress=progress, chunk=chunk,
                          reference=sides.reference)
    _report_position(node, cloud, name)
    return {"changes": totals["changes"], "transactions": totals["transactions"], "conflicts": 0,
            "skipped": totals["skipped"], "pruned": housekeeping.prune_now_and_then(cloud),
            "seconds": round(time.monotonic() - started, 3)}


def _retracked(node, cloud) -> list[str]:
    """Tables the cloud tracks since a time after this node started following them: untracked in between."""
    node_at = dict(node.execute("select table_name, tracked_at from ccsync.tracked where schema_name <> 'ccsync'"))
    return [name for name, at in cloud.execute(
        "select table_name, tracked_at from ccsync.tracked where table_name = any(%s) order by table_name",
        (list(node_at),)) if at > node_at[name]]


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


def _skip_pending(node, tables, own_rows: list[tuple[str, str]]) -> int:
    """Leave alone the rows that carry a local change not pushed yet, and remember them for a refresh.

    Lock first, then look: a local writer with an uncommitted change to a staged row holds its lock, so the
    lock waits for its commit, and the journal entry it committed is seen by the check that follows. (Rows
    that do not exist yet cannot be locked: an insert is checked again after it ran, see _apply_step.)
    So are the rows this node changed itself in the same window (own_touch): their final cloud version
    is read back by the refresh rather than rebuilt from changes around the node's own, which it skips.
    `own_rows`: (table, key) of this node's own changes in the window, which a cloud TRUNCATE before them
    would take away: they are refreshed too.
    """
    node.execute("update ccsync_stage set skipped = true where own_touch and op <> 'T'")
    names = [r[0] for r in node.execute("select distinct table_name from ccsync_stage where op <> 'T'")]
    for name in names:
        t = tables.get(name)
        if t is None:
            continue
        node.execute(
            sql.SQL(
                "select 1 from ccsync_stage s join {T} t on {m} where s.table_name = %s for update of t"
            ).format(T=t.ident, m=t.key_match()),
            (name,),
        )
    _mark_pending(node)
    truncated = [r[0] for r in node.execute("select distinct table_name from ccsync_stage where op = 'T'")]
    if truncated:
        # a truncate from the cloud empties the table: the rows with a pending local change, and the rows this
        # node changed itself later in the window, come back by refresh
        node.execute(
            "insert into ccsync.refresh (table_name, pk) select distinct j.table_name, j.pk from ccsync.journal j "
            "where j.pk is not null and j.table_name = any(%s) on conflict do nothing",
            (truncated,),
        )
        own = [(t, k) for t, k in own_rows if t in truncated]
        if own:
            node.execute(
                "insert into ccsync.refresh (table_name, pk) select t, k::jsonb from unnest(%s::text[], %s::text[]) "
                "as o(t, k) on conflict do nothing",
                ([t for t, _ in own], [k for _, k in own]),
            )
    return node.execute("select count(*) from ccsync_stage where skipped").fetchone()[0]


def _mark_pending(node, step: int | None = None) -> int:
    """Skip the staged changes (of one step, or all) whose row has a local change not pushed yet; remember
    them for a refresh. Returns how many it newly skipped."""
    n = node.execute(
        "update ccsync_stage s set skipped = true where s.op <> 'T' and not s.skipped "
        "and (%(step)s::bigint is null or s.step = %(step)s) and exists "
        "(select 1 from ccsync.journal j where j.table_name = s.table_name and j.pk = s.pk)",
        {"step": step},
    ).rowcount
    node.execute(_REFRESH_SKIPPED, {"step": step})
    return n


# the rows of the skipped changes, for a refresh: under the key before the change and, for a key change, under the
# key after it too (the cloud may have a row under both: a PC's version kept under the old key by a policy)
_REFRESH_SKIPPED = """
insert into ccsync.refresh (table_name, pk)
select distinct s.table_name, k.pk
  from ccsync_stage s
  left join ccsync.tracked t on t.table_name = s.table_name
 cross join lateral (values (s.pk), (case when s.op = 'U' and s.new ?| t.pk_columns
                                          then s.pk || (select jsonb_object_agg(c, s.new -> c)
                                                          from unnest(t.pk_columns) c where s.new ? c) end)) as k(pk)
 where s.skipped and (%(step)s::bigint is null or s.step = %(step)s) and k.pk is not null
on conflict do nothing
"""


def _apply_step(node, t, step) -> None:
    """One step of a pull. An insert may have waited for a local writer inserting the same key (a row that
    did not exist could not be locked first) and then written over it: once it ran, a step whose rows now
    carry a pending local change is undone and run again without them."""
    if step.op != "I":
        _apply.fast_step(node, t, step, push=False)
        return
    while True:
        try:
            with node.transaction():  # a savepoint
                _apply.fast_step(node, t, step, push=False)
                if node.execute(_MET_PENDING, {"step": step.number}).fetchone()[0]:
                    raise _Again
            return
        except _Again:
            _mark_pending(node, step.number)


_MET_PENDING = """
select exists (select 1 from ccsync_stage s join ccsync.journal j on j.table_name = s.table_name and j.pk = s.pk
                where s.step = %(step)s and not s.skipped)
"""


class _Again(Exception):
    """A pulled insert met a local writer's committed insert of the same key: run the step again."""


def refresh(sides: Sides) -> int:
    """Re-read from the cloud the rows a pull skipped, once their local changes have been pushed.

    The refresh reads the cloud as it is now, beyond this node's pull position. A row this node's constraints
    refuse for now stays listed and is read again at the next refresh: a cloud row that refers to a row this
    node deleted (its delete not pushed yet), or a row the cloud removed whose children here are removed by
    cloud changes not pulled yet (another PC's TRUNCATE of a patient and its notes, read back after this node's
    conflicting edit of the patient: the pull that follows removes the notes first). The tables are tried again
    while one of them goes through (a parent before its children). Refused with nothing left to push nor to
    pull, it is one clear error."""
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
    pending = list(by_table.items())
    while pending:
        failed = []
        for name, keys in pending:
            t = tables.get(name)
            if t is None:
                node.execute("delete from ccsync.refresh where table_name = %s", (name,))
                continue
            try:
                done += _refresh_table(node, cloud, t, keys)
            except psycopg.errors.IntegrityError as exc:
                failed.append((name, keys, exc))
        if len(failed) == len(pending):
            break
        pending = [(name, keys) for name, keys, _ in failed]
    if failed and not node.execute("select exists (select 1 from ccsync.journal)").fetchone()[0] \
            and not pending_count(sides):
        name, _, exc = failed[0]
        raise CcsyncError(f"this PC's constraints refuse the cloud's version of rows of {name} "
                          f"({exc.diag.message_primary}): fix the constraint on this PC, then sync again")
    return done


def _refresh_table(node, cloud, t, keys: list[str]) -> int:
    name = t.name
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
        gone, later = [], []
        for key in missing:
            moved = _apply.moved(cloud, t, key)
            if moved is None:
                gone.append(key)
                continue
            new_key, image = moved
            if node.execute("select exists (select 1 from ccsync.journal where table_name = %s and pk = %s::jsonb)",
                            (name, new_key)).fetchone()[0]:
                gone.append(key)  # the new key has a local change waiting: it is read again after its push
                later.append(new_key)
            elif _apply.fetch_images(node, t, [new_key]):  # this node moved it too (its own change, pushed)
                gone.append(key)
                _apply.upsert_images(node, t, [image])
            else:  # the row as the cloud has it now, under its new key: its children follow (ON UPDATE CASCADE)
                _apply.rekey_to_image(node, t, key, image)
        _apply.delete_keys(node, t, gone)
        # after the moves: a row moved here to a key that is also read back is then overwritten, not inserted twice
        _apply.upsert_images(node, t, present)
        checkpoint("refresh.applied")
        node.execute(
            "delete from ccsync.refresh where table_name = %s and pk = any(%s::jsonb[])", (name, keys)
        )
        if later:
            node.execute("insert into ccsync.refresh (table_name, pk) select %s, k::jsonb from unnest(%s::text[]) k "
                         "on conflict do nothing", (name, later))
    return len(keys)
