"""Reading the journal in transaction-visibility batches (as PgQ does) and staging them on the target.

A batch window is (since, upto]: the transactions visible in snapshot `upto` and not in `since`. A "last id
seen" cursor would lose transactions that commit out of order; a snapshot window cannot. Inside a window,
transactions are ordered by their highest journal id: a transaction that saw another's commit wrote after
it, so dependent transactions keep their commit order. A window is applied in chunks of whole
transactions; `done_upto` (the highest journal id of the last applied transaction) says where to resume.

A chunk is planned before it is staged: its changes are put in apply order (`seq`) and cut into steps,
each applied by one set-based statement on the target. Planning reads a narrow list of the changes (no
row images) and cuts it here, in Python, in one pass, not with window functions in SQL (each sorts the whole
chunk, row images included). Three ways to cut, from the fewest statements to the most:

    merged  changes to different rows commute, so every table and operation gets one statement per
            "level" (a row's first change in the chunk is level 1, its second level 2...), whatever the
            number of source transactions. Statements run level by level, within a level in the order of
            their first change. A chunk with a primary-key change or a TRUNCATE is cut as `runs`.
    runs    consecutive changes of one table, operation and set of columns, cut again where a row
            repeats and around a primary-key change: the source's own order, statement by statement.
    exact   one change per statement.

Before these, on the cloud (a push), `net`: a row that changes several times in the chunk, every time an
update of the same columns and each change starting from the values the previous one left (nothing came
between them, a pull's changes included), is applied as one change from its first base to its last values,
so that a busy window (a counter updated by every transaction) is one statement per table, operation and
column set. That is what the changes one by one do whenever the first base still holds on the cloud: then
every later base holds too. So a net step must apply every one of its rows on its base; if one does not
(a conflict), or anything else is unlike the chunk's changes one by one, the chunk is planned again, merged.
The net change skips a chain's intermediate images, so it is taken only where the cloud could neither refuse
nor see one of them (`net_columns`, read from the cloud's catalog once per push); any other chain goes merged.

Reordering can only trip a constraint (a foreign key whose parent comes in a later statement, a unique
column two rows swap): the target then rejects the statement, the chunk is rolled back and applied
again with the next, stricter cut. Nothing is applied out of order for any one row.

The commonest windows need no list at all. When every row of a whole window changes once, with no key
change and no TRUNCATE (a bulk statement; a day of single-row transactions on different rows), the merged
cut is one level: one step per table, operation and column set, worked out by a grouping query on the
source (`_grouped`; for one source transaction a cheaper check, `_one_step`), and the staging COPY picks
each change's step by the same three things. A chunk of many changes is then planned in tens of
milliseconds instead of being listed to Python.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from .. import progress as _progress

MODES = ("net", "merged", "runs", "exact")

RELAY_BLOCK = 1 << 18  # bytes

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
    and (cardinality(%(skip_tables)s::text[]) = 0
         or not exists (select 1 from unnest(%(skip_tables)s::text[], %(skip_snaps)s::pg_snapshot[]) as k(t, snap)
                        where k.t = j.table_name and pg_visible_in_snapshot(j.txid, k.snap)))
"""

# what the target applies: everything but the target's own changes (no echo)
WANTED = "j.origin <> %(exclude_origin)s"

# an update's changed columns with their new values (d.ch), their old values (d.och) and their names (d.cols, the
# text of a text[] in jsonb's key order, as `array(select jsonb_object_keys(d.ch))::text` prints them): the journal
# holds whole row images (up to revision 0007, the changed columns only: the old and the new image then hold the same
# keys), and a step applies only what changed. Worked out inline, in one pass over the new image: this is
# ccsync.changed(j.old, j.new) and ccsync.changed(j.new, j.old) for two images of the same keys, without their two
# SQL function calls per change (each a query of its own). `offset 0` keeps the subquery whole, so that it runs
# once per change (pulled up, it runs once per use of d.ch: four times per change in ONE_STEP). Each query takes
# only the outputs it reads.
def _changed(*, old: bool = False, cols: bool = False, ch: bool = True) -> str:
    out = []
    if ch:
        out.append("case when j.op = 'U' then coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb) end as ch")
    if old:
        out.append("case when j.op = 'U' then coalesce(jsonb_object_agg(n.key, j.old -> n.key), '{}'::jsonb) end as och")
    if cols:
        out.append("case when j.op = 'U' then coalesce(array_agg(n.key), '{}')::text end as cols")
    return (f"cross join lateral (select {', '.join(out)} from jsonb_each(case when j.op = 'U' then j.new end) as n"
            " where (j.old -> n.key)::text is distinct from n.value::text offset 0) d")


CHANGED = _changed()

# what the target stages of a change: an update as its changed columns (old and new), else the whole images
# (with _changed(old=True))
STAGED_OLD = "coalesce(d.och, j.old)"
STAGED_NEW = "coalesce(d.ch, j.new)"
STAGED_IMAGES = f"{STAGED_OLD}, {STAGED_NEW}"

# the chunk's transactions: the window narrowed to a txid range, then to the listed transactions
# (no list when the chunk is the whole window: a list of thousands of transactions costs planning time)
CHUNK = ("(%(txids)s::text is null or (j.txid between %(first)s::text::xid8 and %(last)s::text::xid8 "
         "and j.txid = any(string_to_array(%(txids)s, ',')::xid8[])))")

# what planning needs of each change of the chunk: no row images
PLAN_ROWS = f"""
select j.id, j.txid::text::bigint, j.table_name, j.op::text, j.pk::text,
       coalesce(d.ch ?| t.pk_columns, false),
       d.cols,
       coalesce(j.depth, 1)
  from ccsync.journal j {_changed(cols=True)}
  left join ccsync.tracked t on t.table_name = j.table_name
 where {WINDOW} and {WANTED} and {CHUNK}
"""

# own_touch: the target itself changed this row in the same window. Applying another origin's change to it
# could put an older value over the target's own newer one (which it skips), so such rows are refreshed
# from the cloud instead.
OWN_ROWS = f"select distinct j.table_name, j.pk::text from ccsync.journal j where {WINDOW} and not ({WANTED})"
OWN_ROWS_EXIST = sql.SQL("select exists ({})").format(sql.SQL(OWN_ROWS))

# a whole window of one source transaction (a bulk statement) is often one step: checked in two scans of the
# window, without fetching its changes or computing a key set per change (the first update's keys are checked
# against every other's with ?& and -, which need no per-row subquery)
FIRST_CHANGE = f"""
select j.table_name, j.op::text, d.cols,
       t.pk_columns::text
  from ccsync.journal j {_changed(ch=False, cols=True)}
  left join ccsync.tracked t on t.table_name = j.table_name
 where {WINDOW} and {WANTED} and {CHUNK} limit 1
"""
# every change like the first one: its table, operation and (an update) column set, no key changed. (Compared
# with parameters: no join per change, which the planner makes a nested loop when the journal's statistics
# are those of a nearly empty table, and no aggregate of names)
ONE_STEP = f"""
select count(*),
       bool_and(j.table_name = %(table)s and j.op = %(op)s::"char"
                and (j.op <> 'U' or (not d.ch ?| %(pk)s::text[]
                                     and d.ch ?& %(keys)s::text[] and d.ch - %(keys)s::text[] = '{{}}'::jsonb)))
  from ccsync.journal j {CHANGED}
 where {WINDOW} and {WANTED} and {CHUNK}
"""
# (one table: its rows told apart by their keys alone). Rows are grouped by a 64-bit hash of their key, here and
# in GROUPS, never by the jsonb keys themselves (which the planner sorts, on a journal analyzed while nearly
# empty); two keys with one hash (about one chance in 10^9 for 200,000 rows) only look like a row changed twice,
# and the window is then planned from the list of its changes
DISTINCT_ROWS = f"""
select count(*) from (select 1 from ccsync.journal j where {WINDOW} and {WANTED} and {CHUNK}
                       group by jsonb_hash_extended(j.pk, 0)) d
"""

# a whole window in which every row changes once, without a primary-key change or a TRUNCATE (a bulk
# statement; a day of single-row transactions on different rows) is planned from its groups of changes, one
# step per table, operation and column set, without fetching a line per change. A key change is seen from a
# group's column set; names are grouped in the "C" collation (byte order: the grouping needs no locale)
GROUPS = f"""
select g.table_name, g.op, g.cols, g.n, g.first,
       g.bad or g.op = 'T' or coalesce(g.op = 'U' and g.cols::text[] && t.pk_columns, false), g.entries
  from (select r.table_name, r.op, r.cols, count(*) as n, min(r.id) as first, bool_or(r.bad) as bad,
               sum(r.entries)::bigint as entries
          from (select c.table_name, min(c.op) as op, min(c.cols) as cols, min(c.id) as id, count(*) as entries,
                       -- a row changed twice; in a net plan (%(net)s) only unless updates of one column set, at
                       -- the depth of a session's statement (a row's changes are in journal order)
                       count(*) > 1 and not (%(net)s and min(c.op) = 'U' and max(c.op) = 'U'
                                            and min(c.cols) = max(c.cols) and max(c.depth) = 1) as bad
                  from (select j.table_name collate "C" as table_name, j.op::text collate "C" as op, j.id,
                               jsonb_hash_extended(j.pk, 0) as key_hash, coalesce(j.depth, 1) as depth,
                               d.cols collate "C" as cols
                          from ccsync.journal j {_changed(ch=False, cols=True)}
                         where {WINDOW} and {WANTED} and {CHUNK}
                        offset 0) c  -- the column sets worked out in the scan: the grouping sorts narrow rows
                 group by c.table_name, c.key_hash) r
         group by 1, 2, 3) g
  left join ccsync.tracked t on t.table_name = g.table_name
 order by g.first
"""
# a grouped plan's changes, each with its step: matched by table and operation, and by the column set where
# one table's updates fall in several steps; numbered 1..n (seq) in the order read (a step's rows are distinct)
COPY_GROUPS = f"""
copy (
    select row_number() over (), g.step, j.txid, j.hlc, j.origin, j.table_name, j.op, j.pk, {STAGED_IMAGES}, false
      from ccsync.journal j {_changed(old=True, cols=True)}
      join unnest(%(g_tables)s::text[], %(g_ops)s::text[], %(g_cols)s::text[]) with ordinality as g(t, op, cols, step)
        on g.t = j.table_name and g.op = j.op::text
       and (g.cols is null or g.cols = d.cols)
     where {WINDOW} and {WANTED} and {CHUNK}
) to stdout (format binary)
"""

# a net plan's rows, each once: its first base and its last values, and whether each of its changes started from
# the values the one before left (staged as `skipped`: a row that is not is checked for once staged, and the
# chunk is then planned merged). A row's changes are in journal order (its later change waited for the
# earlier one's commit); rows are grouped by table and key, the key's hash first (few jsonb comparisons), the
# images worked out once in the scan and every aggregate in the same order (one sort)
COPY_NET = f"""
copy (
    select row_number() over (), g.step, x.txids[x.n], x.hlc, x.origins[x.n], x.table_name, x.op::"char", x.pk,
           x.olds[1], x.news[x.n], false, not (x.n = 1 or x.olds[2:] = x.news[:x.n - 1])
      from (select c.table_name, c.pk, min(c.op) as op, min(c.cols) as cols, max(c.hlc) as hlc, count(*)::int as n,
                   array_agg(c.txid order by c.id) as txids, array_agg(c.origin order by c.id) as origins,
                   array_agg(c.old order by c.id) as olds, array_agg(c.new order by c.id) as news
              from (select j.id, j.txid, j.hlc, j.origin, j.table_name collate "C" as table_name,
                           j.op::text collate "C" as op, j.pk, {STAGED_OLD} as old, {STAGED_NEW} as new,
                           d.cols collate "C" as cols
                      from ccsync.journal j {_changed(old=True, cols=True)}
                     where {WINDOW} and {WANTED} and {CHUNK}
                    offset 0) c
             group by c.table_name, jsonb_hash_extended(c.pk, 0), c.pk) x
      join unnest(%(g_tables)s::text[], %(g_ops)s::text[], %(g_cols)s::text[]) with ordinality as g(t, op, cols, step)
        on g.t = x.table_name and g.op = x.op and (g.cols is null or g.cols = x.cols)
) to stdout (format binary)
"""

COPY_OUT = f"""
copy (
    select m.seq, m.step, j.txid, j.hlc, j.origin, j.table_name, j.op, j.pk, {STAGED_IMAGES}, m.own_touch
      from ccsync.journal j {_changed(old=True)}
      join unnest(string_to_array(%(ids)s, ',')::bigint[], string_to_array(%(steps)s, ',')::bigint[],
                  string_to_array(%(own)s, ',')::boolean[]) with ordinality as m(id, step, own_touch, seq)
        on m.id = j.id
     where {CHUNK}
) to stdout (format binary)
"""


class Txn(NamedTuple):
    """A source transaction of a window: its id, its highest journal id (its place in apply order), its size."""

    txid: int
    last_id: int
    entries: int


class Change(NamedTuple):
    """What planning needs of one change (no row images)."""

    id: int
    txid: int
    table: str
    op: str
    pk: str
    pk_change: bool  # an update that changes the primary key
    cols: str | None  # an update's column set, as the source prints a text[]
    depth: int = 1  # the trigger depth it was captured at (1, a session's statement, when not recorded)


class Group(NamedTuple):
    """The changes of a whole window to one table with one operation and column set (a grouped plan's step)."""

    table: str
    op: str
    cols: str | None
    count: int
    first: int
    unfit: bool  # a row changed twice (net: unlike a chain of updates), a key changed, a TRUNCATE: not by groups
    entries: int = 0  # the changes of its rows (net: more than `count` where a row changed several times)


@dataclass(frozen=True)
class Chunk:
    """The source transactions one target transaction applies: the whole window (`Chunk.whole_window`), read
    through the window itself (a list of thousands of transactions costs planning time), or some of its
    transactions (`Chunk.of`), read through their list."""

    txns: tuple[Txn, ...]  # in apply order; a whole window's only if they were listed anyway (else none)
    whole: bool  # every transaction of the window, none applied before
    last: bool = True  # the window's last chunk
    end: int = 0  # the highest journal id of its last transaction (0: a whole window not listed)

    @classmethod
    def whole_window(cls, txns: Sequence[Txn] = ()) -> Chunk:
        """Every transaction of the window, none applied before (`txns`: all of them, if listed anyway)."""
        return cls(tuple(txns), True, True, txns[-1].last_id if txns else 0)

    @classmethod
    def of(cls, txns: Sequence[Txn], *, last: bool = True) -> Chunk:
        """These transactions of the window (at least one), in apply order; `last`: none after them."""
        return cls(tuple(txns), False, last, txns[-1].last_id)

    @property
    def txids(self) -> list[int]:
        return [t.txid for t in self.txns]


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


@dataclass
class Step:
    """One set-based statement: `count` changes of one table and operation (`columns`: an update's)."""

    number: int
    table: str
    op: str
    columns: tuple[str, ...] | None
    count: int = 0
    entries: int = 0  # net: the source changes of its `count` rows (more where a row changed several times)


@dataclass
class Plan:
    mode: str
    whole: bool = False  # the chunk is the whole window
    grouped: bool = False  # steps decided from groups of changes, not listed (ids, steps_of and own are empty)
    top_hlc: int | None = None  # the chunk's highest clock value (from the window's summary, else once staged)
    match: list[str | None] = field(default_factory=list)  # grouped: the column set that picks each step's updates
    ids: list[int] = field(default_factory=list)  # in apply order
    steps_of: list[int] = field(default_factory=list)
    own: list[bool] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    entries: int | None = None  # net: the source changes its rows stand for (a step's count is of rows)

    @property
    def changes(self) -> int:
        return self.entries if self.entries is not None else sum(s.count for s in self.steps)


# The columns of each tracked table of the cloud whose intermediate images the cloud can neither refuse nor
# observe, so that a chain of updates of them may go as its net change. The table: a plain table (no partition,
# no partitioned or inherited table: a partition constraint refuses values), without row security or rules,
# without a trigger other than ccsync's (an audit trigger sees every version), without a foreign key either way
# (an intermediate parent, or a parent's intermediate key, is refused or cascaded), without a unique index
# other than the primary key's, an exclusion constraint, a CHECK constraint, an index on an expression or with
# a predicate, a stored generated column (each evaluates the intermediate images), and in no publication, on
# a database with no logical replication slot (a subscriber or a change-data reader sees every version). The column: nullable, in no index but the primary key's (an index refuses an
# oversized value), of a base type or an array of one (no domain, enum or composite: their constraints and
# labels can differ between the sides); the caller also checks it has the node's type, modifier included
NET_FIT = """
select t.table_name,
       coalesce(array_agg(a.attname::text order by a.attnum) filter (where a.attname is not null), '{}') as columns
  from ccsync.tracked t
  join pg_class c on c.oid = to_regclass(t.table_name)
  join pg_namespace n on n.oid = c.relnamespace
  left join (pg_attribute a join pg_type ty on ty.oid = a.atttypid left join pg_type e on e.oid = ty.typelem)
         on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and not a.attnotnull
        and ty.typtype = 'b' and (ty.typelem = 0 or e.typtype = 'b')
        and not exists (select 1 from pg_index i where i.indrelid = c.oid and not i.indisprimary
                                                   and a.attnum = any (i.indkey::int2[]))
 where c.relkind = 'r' and not c.relispartition and not c.relrowsecurity and not c.relhasrules
   and not exists (select 1 from pg_inherits h where h.inhparent = c.oid)
   and not exists (select 1 from pg_trigger g join pg_proc f on f.oid = g.tgfoid
                    where g.tgrelid = c.oid and f.pronamespace <> 'ccsync'::regnamespace)
   and not exists (select 1 from pg_constraint k
                    where (k.conrelid = c.oid and k.contype in ('f', 'u', 'x', 'c'))
                       or (k.confrelid = c.oid and k.contype = 'f'))
   and not exists (select 1 from pg_index i where i.indrelid = c.oid and not i.indisprimary
                                              and (i.indisunique or i.indexprs is not null or i.indpred is not null))
   and not exists (select 1 from pg_attribute g where g.attrelid = c.oid and g.attgenerated <> '' and not g.attisdropped)
   and not exists (select 1 from pg_publication_tables p where p.schemaname = n.nspname and p.tablename = c.relname)
   and not exists (select 1 from pg_replication_slots s where s.slot_type = 'logical' and s.database = current_database())
 group by t.table_name
"""


def net_columns(cloud: psycopg.Connection, node: psycopg.Connection, cloud_tables: dict,
                node_tables: dict) -> dict[str, frozenset[str]]:
    """Per tracked table, the columns whose chains of updates a push may take as their net change (see NET_FIT):
    read from the cloud's catalog (its constraints are the ones that refuse), each of the node's type. None
    unless the cloud can store every character the node can (UTF8, or the node's own encoding)."""
    encodings = [c.execute("select current_setting('server_encoding')").fetchone()[0] for c in (cloud, node)]
    if encodings[0] not in ("UTF8", encodings[1]):
        return {}
    out = {}
    for table, columns in cloud.execute(NET_FIT).fetchall():
        ct, nt = cloud_tables.get(table), node_tables.get(table)
        if ct is None or nt is None:
            continue
        node_cast = {c.name: c.cast for c in nt.columns}
        out[table] = frozenset(c.name for c in ct.columns if c.name in columns and node_cast.get(c.name) == c.cast)
    return out


class NetRefused(Exception):
    """A net plan is unlike the chunk's changes one by one (a base that does not hold, a row whose changes do
    not follow each other): the chunk is planned again, merged."""


def own_rows(src: psycopg.Connection, window: Window) -> list[tuple[str, str]]:
    """(table, key) of the rows the target itself changed in the window (its own entries, which it skips)."""
    return [(table, key) for table, key in src.execute(OWN_ROWS, window.params()) if key is not None]  # not a TRUNCATE


def current_snapshot(conn: psycopg.Connection) -> str:
    return conn.execute("select pg_current_snapshot()::text").fetchone()[0]


def transactions(src: psycopg.Connection, window: Window) -> list[Txn]:
    """The window's transactions not yet applied, in apply order."""
    with src.cursor(row_factory=class_row(Txn)) as cur:
        return cur.execute(
            f"select j.txid::text::bigint as txid, max(j.id) as last_id, count(*) as entries from ccsync.journal j "
            f"where {WINDOW} and {WANTED} group by j.txid having max(j.id) > %(done)s order by 2",
            window.params(),
        ).fetchall()


@dataclass
class Summary:
    """A window none of which is applied yet, counted in one scan (two when it holds several transactions)."""

    entries: int
    transactions: int
    inserts_into: str | None  # the one table the window only inserts rows into, if so
    top_hlc: int | None


def summary(src: psycopg.Connection, window: Window) -> Summary:
    # names compared in the "C" collation (bytes): no locale lookup per change; the transactions counted only
    # when there are several (a distinct count sorts the whole window, a second for a bulk statement)
    entries, one, inserts_into, top = src.execute(
        f"""
        select count(*), min(j.txid) = max(j.txid),
               case when bool_and(j.op = 'I') and min(j.table_name collate "C") = max(j.table_name collate "C")
                    then min(j.table_name collate "C") end,
               max(j.hlc)
          from ccsync.journal j
         where {WINDOW} and {WANTED}
        """,
        window.params(),
    ).fetchone()
    if one is None or one:
        return Summary(entries, int(entries > 0), inserts_into, top)
    count = src.execute(
        f"select count(*) from (select distinct j.txid from ccsync.journal j where {WINDOW} and {WANTED}) d",
        window.params(),
    ).fetchone()[0]
    return Summary(entries, count, inserts_into, top)


def chunks(txns: list[Txn], limit: int) -> list[list[Txn]]:
    """Whole transactions grouped so that a chunk holds about `limit` entries (one big transaction alone)."""
    out: list[list[tuple[int, int, int]]] = []
    size = 0
    for tx in txns:
        if not out or (size + tx.entries > limit and size > 0):
            out.append([])
            size = 0
        out[-1].append(tx)
        size += tx.entries
    return out


def _chunk_params(window: Window, chunk: Chunk, **extra) -> dict:
    """The query parameters that select the chunk's changes: a whole window by the window alone (CHUNK's list
    null), else by the list of its transactions."""
    if chunk.whole:
        return window.params(first=None, last=None, txids=None, **extra)
    txids = chunk.txids
    return window.params(first=str(min(txids)), last=str(max(txids)), txids=",".join(map(str, txids)), **extra)


def plan(src: psycopg.Connection, window: Window, chunk: Chunk, mode: str, *,
         transactions: int | None = None, net: dict[str, frozenset[str]] | None = None) -> Plan:
    """Put a chunk's changes in apply order and cut them into steps (see the module's docstring).
    `transactions`: how many source transactions a whole window holds, if known. `net`: per table, the
    columns whose chains of updates the target may take as their net change (see `net_columns`); none: no
    net plan. The plan's mode is the one it was cut in (`net` gives way to `merged` where it does not fit)."""
    whole = chunk.whole
    p = None
    if mode == "net" and (window.exclude_origin or not net):
        mode = "merged"  # net plans are the push's: a pull has the rows the node changed itself to skip
    # rows the target changed itself in the window (a pull) have their changes flagged one by one: listed
    if mode != "exact" and (whole or mode == "net") and not (
            window.exclude_origin and src.execute(OWN_ROWS_EXIST, window.params()).fetchone()[0]):
        # grouped by hashing, never by sorting: the journal's statistics are often those of a nearly empty
        # table, and the planner would then sort the window to group it
        p = whole and transactions == 1 and _one_step(src, window, chunk, "merged" if mode == "net" else mode) or None
        if p is None:
            src.execute("set enable_sort = off")
            try:
                p = _grouped(src, window, chunk, mode, net)
            finally:
                src.execute("reset enable_sort")
        if p is None and mode == "net":
            mode = "merged"  # (the groups said why: a row changed twice otherwise than by a chain of updates, or
            # a chain the target could see otherwise than one by one)
    if p is None:
        p = _listed(src, window, chunk, mode)
    texts = sorted({s.columns for s in p.steps if s.columns is not None})
    if texts:  # the column sets as the source printed them (text arrays), parsed once each
        parsed = dict(zip(texts, src.execute("select unnest(%s::text[])::text[]", (texts,)).fetchall()))
        for s in p.steps:
            if s.columns is not None:
                s.columns = tuple(parsed[s.columns][0])
    return p


def _grouped(src, window: Window, chunk: Chunk, mode: str,
             net: dict[str, frozenset[str]] | None = None) -> Plan | None:
    """The plan of a whole window in which every row changes once (no primary-key change, no TRUNCATE), or
    None. Its steps are its groups of changes of one table, operation and column set: changes to different
    rows commute, so one statement per group applies the window as the source did, one by one. Steps run in
    the order of their first change (a constraint that objects sends the window to `_listed`, cut finer).
    In `net` mode, also of a chunk (not whole) where rows change several times by a chain of updates (see
    COPY_NET) and only of the columns `net` allows for its table; a chunk where no row does is planned `merged`,
    the same steps without the net staging."""
    whole = chunk.whole
    params = _chunk_params(window, chunk, net=mode == "net")
    with src.cursor(row_factory=_positional(Group)) as cur:
        groups = cur.execute(GROUPS, params).fetchall()
    if not groups or any(g.unfit for g in groups) or (mode not in ("net", "merged") and len(groups) > 1):
        return None  # a row changed twice (levels of a listed plan), a key changed, a TRUNCATE
    chained = [g for g in groups if g.entries > g.count] if mode == "net" else []
    if chained:
        sets = src.execute("select unnest(%s::text[])::text[]", ([g.cols for g in chained],)).fetchall()
        if any(not set(cols) <= (net or {}).get(g.table, frozenset()) for g, (cols,) in zip(chained, sets)):
            return None  # a chain the target could refuse or see otherwise than one by one: merged, listed
    net = bool(chained)
    if mode == "net" and not net and not whole:
        return None  # a part of a window: listed, as before
    several = Counter((g.table, g.op) for g in groups)
    return Plan("net" if net else "merged" if mode == "net" else mode, whole, grouped=True,
                steps=[Step(n, g.table, g.op, g.cols, g.count, g.entries) for n, g in enumerate(groups, start=1)],
                match=[g.cols if several[(g.table, g.op)] > 1 else None for g in groups],
                entries=sum(g.entries for g in groups) if net else None)


def _one_step(src, window: Window, chunk: Chunk, mode: str) -> Plan | None:
    """The plan of a whole window of one source transaction that is one step, or None: the cheap check for a
    bulk statement (no key set computed per change)."""
    params = _chunk_params(window, chunk)
    first = src.execute(FIRST_CHANGE, params).fetchone()
    if first is None:
        return None
    table, op, keys, pk = first
    if op == "T":
        return None
    count, one = src.execute(ONE_STEP, {**params, "table": table, "op": op, "keys": keys or "{}", "pk": pk or "{}"}).fetchone()
    if not one or src.execute(DISTINCT_ROWS, params).fetchone()[0] != count:
        return None  # several tables, operations or column sets; a key changed; a row changed twice
    return Plan(mode, True, grouped=True, steps=[Step(1, table, op, keys if op == "U" else None, count)], match=[None])


def _listed(src, window: Window, chunk: Chunk, mode: str) -> Plan:
    """The plan of a chunk from the list of its changes (no row images), cut in one pass."""
    with src.cursor(row_factory=_positional(Change)) as cur:
        rows = cur.execute(PLAN_ROWS, _chunk_params(window, chunk)).fetchall()
    _in_apply_order(rows, chunk.txns)
    own: set[tuple[str, str]] = set()
    if window.exclude_origin:
        own = {(table, key) for table, key in src.execute(OWN_ROWS, window.params())}
    if mode == "merged" and any(r.pk_change or r.op == "T" for r in rows):
        mode = "runs"
    p = Plan(mode, chunk.whole, ids=[r.id for r in rows],
             # (table, None): the target truncated the table itself in the window: every row of it is its own
             own=[(r.table, r.pk) in own or (r.table, None) in own for r in rows] if own else [False] * len(rows))
    if mode != "exact" and rows and not any(r.pk_change for r in rows) \
            and len({(r.table, r.op, r.cols) for r in rows}) == 1 and len({(r.table, r.pk) for r in rows}) == len(rows):
        # the common case, decided without a loop: one table, operation and column set, every row once
        p.steps, p.steps_of = [Step(1, rows[0].table, rows[0].op, rows[0].cols, len(rows))], [1] * len(rows)
    else:
        _cut(p, rows, mode)
    return p


def _positional(cls):
    """A row factory making `cls` (a NamedTuple) from a row's columns in order (queries with unnamed columns)."""
    def factory(cursor):
        return lambda values: cls(*values)
    return factory


def _in_apply_order(rows: list[Change], txns: Sequence[Txn]) -> None:
    """Sort changes by their transaction's highest id, then by id (see the module's docstring); within a
    transaction, a statement before the entries its triggers and cascades wrote. The transactions' order is
    the list's, `txns` (already in apply order); none listed (a whole window), worked out from the rows."""
    if txns:
        rank = {t.txid: i for i, t in enumerate(txns)}
    else:
        tx_max: dict[int, int] = {}
        for r in rows:
            if r.id > tx_max.get(r.txid, 0):
                tx_max[r.txid] = r.id
        rank = tx_max
    if len(rank) > 1:
        rows.sort(key=lambda r: (rank[r.txid], r.id))
    else:
        rows.sort(key=lambda r: r.id)  # one transaction: by id
    if any(r.depth > 1 for r in rows):
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i].txid != rows[start].txid:
                rows[start:i] = causes_first(rows[start:i], lambda r: r.depth)
                start = i


def causes_first(entries: list, depth_of) -> list:
    """One transaction's entries in journal order, where the entries a statement's triggers and cascades
    wrote (a larger depth) come just before the statement's own, reordered so that every statement comes
    before its consequences: an ON UPDATE CASCADE applies the parent's new key before the children point
    to it. Entries of one depth keep their order."""
    stack: list[tuple[int, list]] = []
    for e in entries:
        depth = depth_of(e)
        consequences: list = []
        while stack and stack[-1][0] > depth:
            consequences[:0] = stack.pop()[1]
        stack.append((depth, [e] + consequences))
    return [e for _, group in stack for e in group]


def _cut(p: Plan, rows: list[Change], mode: str) -> None:
    """The steps of a chunk in `mode`, one change after the other (rows in apply order)."""
    groups: dict[tuple, Step] = {}
    order: list[tuple] = []
    seen: dict[tuple[str, str | None], int] = {}
    of: list[Step] = []
    run, last_key, last_pkchange = 0, None, False
    for seq, (_id, _txid, table, op, pk, pkchange, cols, _depth) in enumerate(rows, start=1):
        if mode == "exact":
            group: tuple = (seq,)
        elif mode == "runs":
            key = (table, op, cols)
            if key != last_key or pkchange or last_pkchange:
                run, seen = run + 1, {}
            last_key, last_pkchange = key, pkchange
            seen[(table, pk)] = occ = seen.get((table, pk), 0) + 1
            group = (run, occ)
        else:
            seen[(table, pk)] = level = seen.get((table, pk), 0) + 1
            group = (level, table, op, cols)
        step = groups.get(group)
        if step is None:
            step = groups[group] = Step(0, table, op, cols)
            order.append(group)
        step.count += 1
        of.append(step)
    if mode == "merged":
        order.sort(key=lambda g: g[0])  # level by level; stable: within a level, by first change
    for number, group in enumerate(order, start=1):
        groups[group].number = number
    p.steps = [groups[g] for g in order]
    p.steps_of = [s.number for s in of]


def stage(src: psycopg.Connection, dst: psycopg.Connection, window: Window, chunk: Chunk, p: Plan) -> int:
    """Copy one planned chunk (`p`, the plan of `chunk`) from the source journal into ccsync_stage on the
    target (binary COPY)."""
    dst.execute(STAGE_DDL)
    columns = STAGE_COLUMNS
    if p.grouped:
        query = COPY_NET if p.mode == "net" else COPY_GROUPS
        params = _chunk_params(window, chunk, g_tables=[s.table for s in p.steps],
                               g_ops=[s.op for s in p.steps], g_cols=p.match)
        if p.mode == "net":
            columns += ", skipped"
    else:
        query = COPY_OUT
        params = _chunk_params(window, chunk, ids=",".join(map(str, p.ids)), steps=",".join(map(str, p.steps_of)),
                               own=",".join("t" if o else "f" for o in p.own))
    relay(src, query, params, dst, f"copy ccsync_stage ({columns}) from stdin (format binary)")
    if p.mode == "net" and dst.execute("select exists (select 1 from ccsync_stage where skipped)").fetchone()[0]:
        raise NetRefused  # a row whose changes do not follow each other (something came between them)
    if p.top_hlc is None:  # not known from the window's summary: the staged chunk's
        p.top_hlc = dst.execute("select max(hlc) from ccsync_stage").fetchone()[0]
    # no ANALYZE: every statement reads one step through the step index, and the row estimates without
    # statistics lead to index lookups into the target, the right plan for a step of any size
    return p.changes


def relay(src: psycopg.Connection, query, params: dict | None, dst: psycopg.Connection, into, *,
          on_block=None) -> None:
    """Stream a COPY ... TO STDOUT on `src` into a COPY ... FROM STDIN on `dst`, as it comes; `on_block(bytes)`
    after each block written (a progress bar)."""
    with src.cursor() as out_cur, dst.cursor() as in_cur:
        with out_cur.copy(query, params) as out, in_cur.copy(into) as inp:
            block: list = []  # a COPY TO gives a row at a time: they go on in blocks, a write each
            size = 0
            for data in out:
                block.append(data)
                size += len(data)
                if size >= RELAY_BLOCK:
                    inp.write(b"".join(block))
                    if on_block:
                        on_block(size)
                    _progress.relayed(len(block))
                    block.clear()
                    size = 0
            if block:
                inp.write(b"".join(block))
                if on_block:
                    on_block(size)
                _progress.relayed(len(block))
