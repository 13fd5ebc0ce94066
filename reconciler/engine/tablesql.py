"""Per-table SQL for the engine, built from the target's catalog with psycopg.sql (never by formatting).

Row images travel as jsonb in the canonical form of design-0.2 §1 (ccsync.value_sql): a value is applied with its
type's input function, `(image ->> 'col')::type`, for every type, and a key is matched the same way. A current row's
image is built by the expression the capture triggers use (ccsync.row_image_sql), in a session with the capture
settings (db.CANONICAL).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

# types without a usable equality operator: compared by their text form
_TEXT_COMPARED = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str  # without its modifier (what the drift check compares)
    cast: str  # with it: the type a value is read back as, (image ->> 'col')::cast
    is_json: bool
    generated: bool
    text_compared: bool


@dataclass
class Table:
    name: str  # as in the journal: public."Odd Table"
    schema: str
    rel: str
    pk: list[str]
    columns: list[Column]
    policy: str = "manual"
    image_sql: str = "to_jsonb(t.*)"  # the row image of alias t (ccsync.row_image_sql)
    key_sql: str = "null::jsonb"  # its key's image

    # -- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, conn: psycopg.Connection, name: str, policy: str = "manual") -> "Table | None":
        row = conn.execute(
            "select n.nspname, c.relname, c.oid, ccsync.row_image_sql(c.oid, 't'), ccsync.row_image_sql(c.oid, 't', true) "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass(%s)",
            (name,),
        ).fetchone()
        if row is None:
            return None
        schema, rel, oid, image_sql, key_sql = row
        cols = [
            Column(r[0], r[1], r[2], r[1] == "json", r[3] != "", r[4] in _TEXT_COMPARED or r[5] == "G")
            for r in conn.execute(
                """
                select a.attname, format_type(a.atttypid, null), format_type(a.atttypid, a.atttypmod), a.attgenerated,
                       t.typname, t.typcategory
                  from pg_attribute a join pg_type t on t.oid = a.atttypid
                 where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
                 order by a.attnum
                """,
                (oid,),
            )
        ]
        pk = [
            r[0]
            for r in conn.execute(
                """
                select a.attname from pg_index i
                 cross join lateral unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                 where i.indrelid = %s and i.indisprimary order by k.ord
                """,
                (oid,),
            )
        ]
        return cls(name, schema, rel, pk, cols, policy, image_sql, key_sql)

    # -- pieces --------------------------------------------------------------------------------------
    @property
    def ident(self) -> sql.Composed:
        return sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(self.rel)])

    @property
    def writable(self) -> list[Column]:
        return [c for c in self.columns if not c.generated]

    @property
    def json_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.is_json]

    def typed(self, col: Column, field_: str) -> sql.Composed:
        """The typed value of a column from the image in `field_`: its type's input function reads its text."""
        # the cast is the catalog's own spelling of the column's type (format_type), not user input
        return sql.SQL("({f} ->> {c})::{ty}").format(f=sql.SQL(field_), c=sql.Literal(col.name), ty=sql.SQL(col.cast))

    def same(self, col: Column, left: sql.Composable, right: sql.Composable) -> sql.Composed:
        if col.text_compared:
            return sql.SQL("{l}::text is not distinct from {r}::text").format(l=left, r=right)
        return sql.SQL("{l} is not distinct from {r}").format(l=left, r=right)

    def tcol(self, col: Column) -> sql.Composed:
        return sql.SQL("t.{}").format(sql.Identifier(col.name))

    def key_match(self, field_: str = "s.pk", alias: str = "t") -> sql.Composed:
        """`alias` is the row whose key the image in `field_` holds (each key column read back by its type)."""
        cols = {c.name: c for c in self.columns}
        return sql.SQL(" and ").join(
            sql.SQL("{a}.{c} = {v}").format(a=sql.Identifier(alias), c=sql.Identifier(k), v=self.typed(cols[k], field_))
            for k in self.pk
        )

    def image(self) -> sql.SQL:
        """The canonical image of row `t`, as the capture triggers write it (run with db.CANONICAL settings)."""
        return sql.SQL(self.image_sql)  # ccsync.row_image_sql's output: identifiers quoted by format('%I')

    def pk_image(self) -> sql.SQL:
        return sql.SQL(self.key_sql)

    def conflict_columns(self, field_: str, with_new: bool) -> sql.Composed:
        """Columns present in s.<field_> whose target value differs from it (and from s.new when with_new)."""
        parts = []
        for col in self.writable:
            cond = sql.SQL("s.{f} ? {c} and not ({eq})").format(
                f=sql.SQL(field_), c=sql.Literal(col.name),
                eq=self.same(col, self.tcol(col), self.typed(col, f"s.{field_}")),
            )
            if with_new:
                cond = sql.SQL("{} and not ({})").format(
                    cond, self.same(col, self.tcol(col), self.typed(col, "s.new"))
                )
            parts.append(sql.SQL("case when {} then {} end").format(cond, sql.Literal(col.name)))
        if not parts:
            return sql.SQL("'{}'::text[]")
        return sql.SQL("array_remove(array[{}]::text[], null)").format(sql.SQL(", ").join(parts))

    def no_conflict(self) -> sql.Composed:
        """For an update: every changed column still holds its base value, or already the new one."""
        conds = [
            sql.SQL("(not s.old ? {c} or {a} or {b})").format(
                c=sql.Literal(col.name),
                a=self.same(col, self.tcol(col), self.typed(col, "s.old")),
                b=self.same(col, self.tcol(col), self.typed(col, "s.new")),
            )
            for col in self.writable
        ]
        return sql.SQL(" and ").join(conds) if conds else sql.SQL("true")

    def matches_base(self) -> sql.Composed:
        """For a delete: the target row is the row the node deleted."""
        conds = [
            sql.SQL("(not s.old ? {c} or {a})").format(
                c=sql.Literal(col.name), a=self.same(col, self.tcol(col), self.typed(col, "s.old"))
            )
            for col in self.writable
        ]
        return sql.SQL(" and ").join(conds) if conds else sql.SQL("true")

    def set_from_new(self, only: list[str] | None = None) -> sql.Composed:
        cols = [c for c in self.writable if only is None or c.name in only]
        return sql.SQL(", ").join(
            sql.SQL("{c} = case when s.new ? {lit} then {v} else t.{c} end").format(
                c=sql.Identifier(col.name), lit=sql.Literal(col.name), v=self.typed(col, "s.new")
            )
            for col in cols
        )

    def insert_columns(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(c.name) for c in self.writable)

    def insert_values(self) -> sql.Composed:
        return sql.SQL(", ").join(self.typed(c, "s.new") for c in self.writable)

    def upsert_set(self) -> sql.Composed:
        cols = [c for c in self.writable if c.name not in self.pk] or self.writable[:1]
        return sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c.name)) for c in cols
        )

    def pk_columns(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(k) for k in self.pk)
