"""Reading the journal in transaction-visibility batches (as PgQ does) and staging them on the target.

A batch window is (since, upto]: the transactions visible in snapshot `upto` and not in `since`. A "last id
seen" cursor would lose transactions that commit out of order; a snapshot window cannot. Inside a window,
transactions are ordered by their highest journal id: a transaction that saw another's commit wrote after
it, so dependent transactions keep their commit order. A window is applied in chunks of whole
transactions; `done_upto` (the highest journal id of the last applied transaction) says where to resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

STAGE_COLUMNS = "seq, step, txid, hlc, origin, table_name, op, pk, old, new, own_touch"

STAGE_DDL = """
create temp table if not exists ccsync_stage (
    seq bigint, step bigint, txid xid8, hlc bigint, origin text, table_name text, op "char",
    pk jsonb, old jsonb, new jsonb, own_touch boolean,
    done boolean not null default false, skipped boolean not null default false
) on commit delete rows;
create index if not exists ccsync_stage_step on ccsync_stage (step);
"""

# the window, for every origin (the node's own entries included, to see which rows it changed itself)
WINDOW = """
    j.txid < pg_snapshot_xmax(%(upto)s::pg_snapshot)
    and pg_visible_in_snapshot(j.txid, %(upto)s::pg_snapshot)
    and j.txid >= coalesce(pg_snapshot_xmin(%(since)s::pg_snapshot), '0'::xid8)
    and not coalesce(pg_visible_in_snapshot(j.txid, %(since)s::pg_snapshot), false)
    and (j.target is null or j.target = %(exclude_origin)s)
    and not exists (select 1 from unnest(%(skip_tables)s::text[], %(skip_snaps)s::pg_snapshot[]) as k(t, snap)
                    where k.t = j.table_name and pg_visible_in_snapshot(j.txid, k.snap))
"""

# what the target applies: everything but the target's own changes (no echo)
WANTED = "j.origin <> %(exclude_origin)s"

# own_touch: the target itself changed this row in the same window. Applying another origin's change to it
# could put an older value over the target's own newer one (which it skips), so such rows are refreshed
# from the cloud instead.
COPY_OUT = f"""
copy (
    with a as (
        select j.id, j.txid, j.hlc, j.origin, j.table_name, j.op, j.pk, j.old, j.new,
               bool_or(j.origin = %(exclude_origin)s) over (partition by j.table_name, j.pk) as own_touch
          from ccsync.journal j
         where {WINDOW}
    ), w as (
        select a.*, max(a.id) over (partition by a.txid) as tx_max,
               (a.op = 'U' and a.new ?| coalesce(t.pk_columns, '{{}}')) as pkchange
          from a
          left join ccsync.tracked t on t.table_name = a.table_name
         where a.origin <> %(exclude_origin)s
    ), o as (
        select w.*, row_number() over (order by tx_max, id) as seq
          from w where tx_max > %(done)s and tx_max <= %(chunk_end)s
    ), b as (
        select o.*,
               case when (table_name, op) is distinct from
                         (lag(table_name) over (order by seq), lag(op) over (order by seq))
                      or pkchange or coalesce(lag(pkchange) over (order by seq), false)
                    then 1 else 0 end as brk
          from o
    ), r as (
        select b.*, sum(brk) over (order by seq) as run from b
    ), q as (
        select r.*, row_number() over (partition by run, pk order by seq) as occ from r
    )
    select seq,
           case when %(exact)s then seq else dense_rank() over (order by run, occ) end as step,
           txid, hlc, origin, table_name, op, pk, old, new, own_touch
      from q order by seq
) to stdout (format binary)
"""


@dataclass
class Window:
    since: str | None
    upto: str
    done_upto: int = 0
    exclude_origin: str = ""
    skip: dict[str, str] | None = None  # table -> snapshot already copied by init

    def params(self, **extra) -> dict:
        skip = self.skip or {}
        return {
            "since": self.since, "upto": self.upto, "done": self.done_upto,
            "exclude_origin": self.exclude_origin,
            "skip_tables": list(skip), "skip_snaps": list(skip.values()), **extra,
        }


def current_snapshot(conn: psycopg.Connection) -> str:
    return conn.execute("select pg_current_snapshot()::text").fetchone()[0]


def transactions(src: psycopg.Connection, window: Window) -> list[tuple[int, int, int]]:
    """(txid, max id, entries) of the window's transactions not yet applied, in apply order."""
    return [
        (int(r[0]), r[1], r[2])
        for r in src.execute(
            f"select j.txid::text::bigint, max(j.id), count(*) from ccsync.journal j where {WINDOW} and {WANTED} "
            "group by j.txid having max(j.id) > %(done)s order by 2",
            window.params(),
        )
    ]


def chunks(txns: list[tuple[int, int, int]], limit: int) -> list[list[tuple[int, int, int]]]:
    """Whole transactions grouped so that a chunk holds about `limit` entries (one big transaction alone)."""
    out: list[list[tuple[int, int, int]]] = []
    size = 0
    for tx in txns:
        if not out or (size + tx[2] > limit and size > 0):
            out.append([])
            size = 0
        out[-1].append(tx)
        size += tx[2]
    return out


def stage(src: psycopg.Connection, dst: psycopg.Connection, window: Window, chunk_end: int, *, exact: bool) -> int:
    """Copy one chunk of the window from the source journal into ccsync_stage on the target (binary COPY)."""
    dst.execute(STAGE_DDL)
    rows = 0
    with src.cursor() as out_cur, dst.cursor() as in_cur:
        with out_cur.copy(COPY_OUT, window.params(chunk_end=chunk_end, exact=exact)) as out, \
                in_cur.copy(f"copy ccsync_stage ({STAGE_COLUMNS}) from stdin (format binary)") as inp:
            for data in out:
                inp.write(data)
    rows = dst.execute("select count(*) from ccsync_stage").fetchone()[0]
    dst.execute("analyze ccsync_stage (step, seq)")  # the planner needs these; jsonb statistics cost seconds
    return rows
