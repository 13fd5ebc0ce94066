"""Per-table SQL for the engine, built from the target's catalog with psycopg.sql (never by formatting).

Row images travel as jsonb (to_jsonb of the row; json columns as their exact text). Typed values are
recovered by the type's own input function: a column of a plain scalar type (numbers, text, times, uuid...)
from its JSON text by a cast, which is what jsonb_populate_record does for such a type, at a third of the
cost; any other type (arrays, enums, domains, composites, char(n)) through jsonb_populate_record.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

# types without a usable equality operator: compared by their text form
_TEXT_COMPARED = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
# key types whose JSON text (->>) is their own input form: a key is matched by a plain cast, no record built
_PLAIN_KEY_TYPES = {"smallint", "integer", "bigint", "text", "character varying", "uuid", "numeric"}
# scalar types whose JSON text (->>) is the very string jsonb_populate_record hands to their input function, and
# whose name without a modifier casts to the same type (so not char(n), bit(n): "character" is char(1)); the
# column's modifier (varchar(n), numeric(p,s)) applies when the value is assigned, as it does for the record
_PLAIN_TYPES = _PLAIN_KEY_TYPES | {
    "real", "double precision", "boolean", "date", "timestamp without time zone", "timestamp with time zone",
    "time without time zone", "time with time zone", "interval", "bytea", "inet", "cidr", "macaddr",
}


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    is_json: bool
    generated: bool
    text_compared: bool

    @property
    def plain(self) -> bool:
        """Its typed value is a cast of its JSON text, no record needed (see _PLAIN_TYPES)."""
        return self.is_json or self.type_name in _PLAIN_TYPES


@dataclass
class Table:
    name: str  # as in the journal: public."Odd Table"
    schema: str
    rel: str
    pk: list[str]
    columns: list[Column]
    policy: str = "manual"

    # -- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, conn: psycopg.Connection, name: str, policy: str = "manual") -> "Table | None":
        row = conn.execute(
            "select n.nspname, c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.oid = to_regclass(%s)",
            (name,),
        ).fetchone()
        if row is None:
            return None
        schema, rel, oid = row
        cols = [
            Column(r[0], r[1], r[1] == "json", r[2] != "", r[3] in _TEXT_COMPARED or r[4] == "G")
            for r in conn.execute(
                """
                select a.attname, format_type(a.atttypid, null), a.attgenerated, t.typname, t.typcategory
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
        return cls(name, schema, rel, pk, cols, policy)

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

    def populate(self, source: sql.Composable, alias: str, cols: list[Column] | None = None) -> sql.Composable:
        """The image in `source` as a record of the table, `alias`; nothing when every column of `cols` (the
        ones the statement reads from it; None: any) is plain."""
        if cols is not None and all(c.plain for c in cols):
            return sql.SQL("")
        return sql.SQL("cross join lateral jsonb_populate_record(null::{t}, {src}) as {a}").format(
            t=self.ident, src=source, a=sql.Identifier(alias)
        )

    def typed(self, col: Column, rec: str, field_: str) -> sql.Composed:
        """The typed value of a column from the image in `field_`: a cast of its JSON text when the column is
        plain (json: its exact text), else (rec).col of the image's record (see populate)."""
        if col.is_json:
            return sql.SQL("({f} ->> {c})::json").format(f=sql.SQL(field_), c=sql.Literal(col.name))
        if col.plain:  # the type name is one of _PLAIN_TYPES, constants of this module
            return sql.SQL("({f} ->> {c})::{ty}").format(f=sql.SQL(field_), c=sql.Literal(col.name), ty=sql.SQL(col.type_name))
        return sql.SQL("({r}).{c}").format(r=sql.Identifier(rec), c=sql.Identifier(col.name))

    def same(self, col: Column, left: sql.Composable, right: sql.Composable) -> sql.Composed:
        if col.text_compared:
            return sql.SQL("{l}::text is not distinct from {r}::text").format(l=left, r=right)
        return sql.SQL("{l} is not distinct from {r}").format(l=left, r=right)

    def tcol(self, col: Column) -> sql.Composed:
        return sql.SQL("t.{}").format(sql.Identifier(col.name))

    def key_join(self, field_: str = "s.pk") -> tuple[sql.Composable, sql.Composable]:
        """(lateral join, condition) matching t to the key in `field_`: plain casts of the JSON text when
        every key column's type reads it as is, else the key record (jsonb_populate_record)."""
        types = {c.name: c.type_name for c in self.columns}
        if all(types.get(k) in _PLAIN_KEY_TYPES for k in self.pk):
            return sql.SQL(""), sql.SQL(" and ").join(
                sql.SQL("t.{c} = ({f} ->> {lit})::{ty}").format(
                    c=sql.Identifier(k), f=sql.SQL(field_), lit=sql.Literal(k), ty=sql.SQL(types[k]))
                for k in self.pk
            )
        return self.populate(sql.SQL(field_), "cc_p"), self.pk_match()

    def pk_match(self, rec: str = "cc_p") -> sql.Composed:
        return sql.SQL(" and ").join(
            sql.SQL("t.{c} = ({r}).{c}").format(c=sql.Identifier(k), r=sql.Identifier(rec)) for k in self.pk
        )

    def image(self, alias: str = "t") -> sql.Composed:
        """The jsonb image of a row, with json columns as their exact text (as the capture triggers write it)."""
        a = sql.Identifier(alias)
        if not self.json_columns:
            return sql.SQL("to_jsonb({a}.*)").format(a=a)
        return sql.SQL("ccsync.json_as_text(to_jsonb({a}.*), row_to_json({a}.*), {cols})").format(
            a=a, cols=sql.Literal(self.json_columns)
        )

    def pk_image(self, alias: str = "t") -> sql.Composed:
        return sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}.{}").format(sql.Literal(k), sql.Identifier(alias), sql.Identifier(k)) for k in self.pk
            )
        )

    def conflict_columns(self, field_: str, with_new: bool) -> sql.Composed:
        """Columns present in s.<field_> whose target value differs from it (and from s.new when with_new)."""
        rec = {"old": "cc_o", "new": "cc_n"}[field_]
        parts = []
        for col in self.writable:
            cond = sql.SQL("s.{f} ? {c} and not ({eq})").format(
                f=sql.SQL(field_), c=sql.Literal(col.name),
                eq=self.same(col, self.tcol(col), self.typed(col, rec, f"s.{field_}")),
            )
            if with_new:
                cond = sql.SQL("{} and not ({})").format(
                    cond, self.same(col, self.tcol(col), self.typed(col, "cc_n", "s.new"))
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
                a=self.same(col, self.tcol(col), self.typed(col, "cc_o", "s.old")),
                b=self.same(col, self.tcol(col), self.typed(col, "cc_n", "s.new")),
            )
            for col in self.writable
        ]
        return sql.SQL(" and ").join(conds) if conds else sql.SQL("true")

    def matches_base(self) -> sql.Composed:
        """For a delete: the target row is the row the node deleted."""
        conds = [
            sql.SQL("(not s.old ? {c} or {a})").format(
                c=sql.Literal(col.name), a=self.same(col, self.tcol(col), self.typed(col, "cc_o", "s.old"))
            )
            for col in self.writable
        ]
        return sql.SQL(" and ").join(conds) if conds else sql.SQL("true")

    def set_from_new(self, only: list[str] | None = None) -> sql.Composed:
        cols = [c for c in self.writable if only is None or c.name in only]
        return sql.SQL(", ").join(
            sql.SQL("{c} = case when s.new ? {lit} then {v} else t.{c} end").format(
                c=sql.Identifier(col.name), lit=sql.Literal(col.name), v=self.typed(col, "cc_n", "s.new")
            )
            for col in cols
        )

    def insert_columns(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(c.name) for c in self.writable)

    def insert_values(self) -> sql.Composed:
        return sql.SQL(", ").join(self.typed(c, "cc_n", "s.new") for c in self.writable)

    def upsert_set(self) -> sql.Composed:
        cols = [c for c in self.writable if c.name not in self.pk] or self.writable[:1]
        return sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c.name)) for c in cols
        )

    def pk_columns(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(k) for k in self.pk)
