"""Display labels: how a row of a tracked table is named for people ("Peeters Anna (1985-01-01)", not `id=10`).

A label is an SQL expression over the row's columns, set per table by the schema owner on the cloud
(`ccsync label`) and kept in `ccsync.tracked.label`; it may follow a foreign key to the patient
(`(select p.name from public.patients p where p.id = patient_id)`). Each PC copies the cloud's labels when
it connects to the cloud (init, every sync, the service), so the panel names rows offline too.

The expression is SQL text, so only one authority may write it: the cloud's `ccsync.tracked`, which only the
schema owner can change (a PC's role has no write privilege on ccsync's tables there), copied by the PC's
reconciler into its own database, which only the PC's database owner can change. It is checked when set, and
evaluated over row images in a read-only transaction with a statement timeout, so a label can name rows but
never change one. A label that fails on a row leaves that row unnamed (its key is shown instead).
"""

from __future__ import annotations

import json
import logging

import psycopg
from psycopg import sql

from . import db as _db
from .errors import CcsyncError
from .schema.track import resolve_table

log = logging.getLogger("ccsync.labels")

TIMEOUT_MS = 2000
MAX_LENGTH = 200  # characters of a label shown


def _json(value) -> str:
    # values are read back with ->> and cast to the column's type: a number written as a string reads the same
    return json.dumps(value, default=str)


def _as_dict(image) -> dict:
    if isinstance(image, str):  # jsonb read as text (ccsync's connections keep values exact that way)
        image = json.loads(image)
    return image if isinstance(image, dict) else {}


def _columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, type) of the table's columns, in order."""
    return conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        "where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (table,),
    ).fetchall()


def _row_from(cols: list[tuple[str, str]], doc: str) -> sql.Composed:
    """A one-row select of the table's columns, typed, from a jsonb row image: the label's `r`."""
    return sql.SQL("select {cols}").format(cols=sql.SQL(", ").join(
        sql.SQL("({doc} ->> {name})::{type} as {ident}").format(
            doc=sql.SQL(doc), name=sql.Literal(name), type=sql.SQL(typ), ident=sql.Identifier(name))
        for name, typ in cols
    ))


def _query(conn: psycopg.Connection, table: str, expression: str) -> sql.Composed | None:
    cols = _columns(conn, table)
    if not cols:
        return None
    # the expression comes from ccsync.tracked only (see the module's docstring): never from a request
    return sql.SQL(
        "select cc_in.cc_n, left(({expr})::text, {max}) from jsonb_array_elements(%s::jsonb) "
        "with ordinality as cc_in(cc_doc, cc_n) cross join lateral ({row}) as r order by cc_in.cc_n"
    ).format(expr=sql.SQL(expression), max=sql.Literal(MAX_LENGTH), row=_row_from(cols, "cc_in.cc_doc"))


def _read_only(conn: psycopg.Connection, query: sql.Composed, images: str) -> list[tuple]:
    """Run a label query in a read-only (sub)transaction with a timeout, rolled back whatever happens (so the
    read-only setting never outlives it)."""
    rows: list[tuple] = []
    with conn.transaction() as tx:
        conn.execute("select set_config('transaction_read_only', 'on', true), "
                     "set_config('statement_timeout', %s, true)", (str(TIMEOUT_MS),))
        rows = conn.execute(query, (images,)).fetchall()
        raise psycopg.Rollback(tx)
    return rows


def _evaluate(conn: psycopg.Connection, query: sql.Composed, images: list[dict]) -> list[str | None]:
    """Run a label query over row images, read-only, with a timeout; None for every row when it fails."""
    try:
        found = dict(_read_only(conn, query, _json(images)))
    except psycopg.Error as exc:
        log.warning("a display label failed (%s): rows are shown by their key", exc.diag.message_primary or exc)
        return [None] * len(images)
    return [found.get(i + 1) or None for i in range(len(images))]


def expressions(conn: psycopg.Connection) -> dict[str, str]:
    """Every tracked table's label expression, by table."""
    return dict(conn.execute("select table_name, label from ccsync.tracked where label is not null").fetchall())


def for_images(conn: psycopg.Connection, table: str, images: list[dict | None]) -> list[str | None]:
    """The labels of row images (dicts of column: value, as the journal holds them) of one table."""
    expression = expressions(conn).get(table)
    if not expression or not images:
        return [None] * len(images)
    query = _query(conn, table, expression)
    if query is None:
        return [None] * len(images)
    return _evaluate(conn, query, [_as_dict(img) for img in images])


def for_keys(conn: psycopg.Connection, table: str, keys: list[dict]) -> list[str | None]:
    """The labels of rows of one table named by their primary key ({column: value}), as this database holds
    them now (for the Sumehr page: a patient's key to the patient's name). A key with no row has no label."""
    expression = expressions(conn).get(table)
    if not expression or not keys:
        return [None] * len(keys)
    pk = conn.execute("select pk_columns from ccsync.tracked where table_name = %s", (table,)).fetchone()[0]
    types = dict(_columns(conn, table))
    match = sql.SQL(" and ").join(
        sql.SQL("t.{col} = (cc_in.cc_k ->> {name})::{type}").format(
            col=sql.Identifier(c), name=sql.Literal(c), type=sql.SQL(types[c]))
        for c in pk
    )
    # the table's name is ccsync.tracked's, as format('%I.%I') wrote it
    rows = conn.execute(
        sql.SQL("select cc_in.cc_n, to_jsonb(t) from jsonb_array_elements(%s::jsonb) with ordinality "
                "as cc_in(cc_k, cc_n) join {table} t on {match}").format(table=sql.SQL(table), match=match),
        (_json(keys),),
    ).fetchall()
    found = {n: doc for n, doc in rows}
    images = [found.get(i + 1) for i in range(len(keys))]
    labels = for_images(conn, table, images)
    return [label if image is not None else None for label, image in zip(labels, images)]


def label_conflicts(conn: psycopg.Connection, conflicts: list[dict]) -> list[dict]:
    """Add `label` to conflict records (their cloud row, else their local row, else their base, with the key)."""
    by_table: dict[str, list[dict]] = {}
    for c in conflicts:
        by_table.setdefault(c["table_name"], []).append(c)
    for table, group in by_table.items():
        images = [{**(c.get("base") or {}), **(c.get("local_row") or {}), **(c.get("cloud_row") or {}),
                   **(c.get("pk") or {})} for c in group]
        for c, label in zip(group, for_images(conn, table, images)):
            c["label"] = label
    for c in conflicts:
        c.setdefault("label", None)
    return conflicts


# -- setting and copying (the schema owner on the cloud; each PC's reconciler) ------------------------------
def set_label(dsn: str, table: str, expression: str | None = None, *, columns: list[str] | None = None) -> dict:
    """Set (or, with neither expression nor columns, clear) a tracked table's display label: an SQL expression
    over the row's columns, or a list of columns joined by spaces. Checked on the table before it is stored.
    JSON keys: table, label."""
    if expression is not None and columns:
        raise CcsyncError("give either an SQL expression or --columns, not both")
    if expression is not None and not expression.strip():
        raise CcsyncError("the label expression is empty: give an SQL expression, --columns, or --clear")
    with _db.connect(dsn) as conn:
        _db.identity(conn)
        qualified = resolve_table(conn, table)
        if conn.execute("select 1 from ccsync.tracked where table_name = %s", (qualified,)).fetchone() is None:
            raise CcsyncError(f"{qualified} is not tracked: `ccsync track` it first")
        if columns:
            known = {name for name, _ in _columns(conn, qualified)}
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise CcsyncError(f"{qualified} has no column {', '.join(map(repr, unknown))}")
            expression = sql.SQL("concat_ws(' ', {})").format(
                sql.SQL(", ").join(sql.Identifier("r", c) for c in columns)).as_string(conn)
        if expression is not None:
            _check(conn, qualified, expression)
        try:
            with conn.transaction():
                conn.execute("update ccsync.tracked set label = %s where table_name = %s", (expression, qualified))
        except psycopg.errors.InsufficientPrivilege:
            raise CcsyncError("only the schema owner may set a display label: run `ccsync label` with the cloud "
                              "owner's DSN") from None
    return {"table": qualified, "label": expression}


def _check(conn: psycopg.Connection, table: str, expression: str) -> None:
    """The expression runs on the table's rows (one row, or an empty image when the table is empty)."""
    query = _query(conn, table, expression)
    sample = conn.execute(sql.SQL("select coalesce((select to_jsonb(t) from {} t limit 1), '{{}}')").format(
        sql.SQL(table))).fetchone()[0]
    try:
        _read_only(conn, query, _json([_as_dict(sample)]))
    except psycopg.Error as exc:
        raise CcsyncError(f"the label does not work on {table}: {exc.diag.message_primary or type(exc).__name__}; "
                          "write an SQL expression over the row's columns (e.g. \"name || ' ' || first_name\")"
                          ) from None


def follow(cloud: psycopg.Connection, node: psycopg.Connection) -> None:
    """Copy the cloud's labels into this PC's ccsync.tracked (what changed only)."""
    labels = cloud.execute("select table_name, label from ccsync.tracked").fetchall()
    if not labels:
        return
    node.execute(
        "update ccsync.tracked t set label = c.label from unnest(%s::text[], %s::text[]) as c(table_name, label) "
        "where t.table_name = c.table_name and t.label is distinct from c.label",
        ([t for t, _ in labels], [label for _, label in labels]),
    )
