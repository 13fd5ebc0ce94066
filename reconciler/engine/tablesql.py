"""Per-table SQL for the engine, built from the target's catalog with psycopg.sql (never by formatting).

Row images travel as jsonb in the canonical form of design-0.2 §1 (ccsync.value_sql): a value is applied with its
type's input function, `(image ->> 'col')::type`, for every type, and a key is matched the same way. A current row's
image is built by the expression the capture triggers use (ccsync.row_image_sql), in a session with the capture
settings (db.CANONICAL).
"""

from __future__ import annotations

import dataclasses
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
    default: str | None = None  # the column's default expression, as the catalog prints it (with_defaults)


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
    identity_always: bool = False  # a GENERATED ALWAYS AS IDENTITY column: inserts say OVERRIDING SYSTEM VALUE
    pk_deferrable: bool = False  # a DEFERRABLE primary key cannot arbitrate ON CONFLICT (see upsert)

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
            Column(name, type_name, cast, type_name == "json", generated != "",
                   typname in _TEXT_COMPARED or category == "G")
            for name, type_name, cast, generated, typname, category in conn.execute(
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
        always, deferrable = conn.execute(
            "select exists (select 1 from pg_attribute where attrelid = %(oid)s and attidentity = 'a' and not attisdropped), "
            "exists (select 1 from pg_constraint where conrelid = %(oid)s and contype = 'p' and condeferrable)",
            {"oid": oid},
        ).fetchone()
        return cls(name, schema, rel, pk, cols, policy, image_sql, key_sql, always, deferrable)

    # -- pieces --------------------------------------------------------------------------------------
    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.rel)

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
        """The columns where `_holds` does not: present in s.<field_>, the target's value differs from it (and
        from s.new when with_new)."""
        parts = []
        for col in self.writable:
            cond = sql.SQL("s.{f} ? {c} and not ({h})").format(
                f=sql.SQL(field_), c=sql.Literal(col.name), h=self._holds(col, field_, or_new=with_new))
            parts.append(sql.SQL("case when {} then {} end").format(cond, sql.Literal(col.name)))
        if not parts:
            return sql.SQL("'{}'::text[]")
        return sql.SQL("array_remove(array[{}]::text[], null)").format(sql.SQL(", ").join(parts))

    def base_holds(self, cols: list[Column] | None = None, *, or_new: bool = False) -> sql.Composed:
        """The conflict predicate, for the target row t and the staged change s: every column of the change's
        base (s.old; of `cols` only, when given) still holds its base value, or (or_new) already the change's
        new value. Applied only where it holds; where it does not, a conflict (`conflict_columns` names them)."""
        conds = [sql.SQL("(not s.old ? {c} or {h})").format(c=sql.Literal(col.name), h=self._holds(col, "old", or_new))
                 for col in (cols if cols is not None else self.writable)]
        return sql.SQL(" and ").join(conds) if conds else sql.SQL("true")

    def _holds(self, col: Column, field_: str, or_new: bool) -> sql.Composed:
        """One column of the predicate: the target's value is still the one in s.<field_> (or already s.new's)."""
        holds = self.same(col, self.tcol(col), self.typed(col, f"s.{field_}"))
        if or_new:
            holds = sql.SQL("{} or {}").format(holds, self.same(col, self.tcol(col), self.typed(col, "s.new")))
        return holds

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

    def insert_into(self) -> sql.Composed:
        """`insert into T (columns)`, overriding an identity column's generated value: ccsync writes the value
        the source generated."""
        return sql.SQL("insert into {T} ({cols}){o}").format(
            T=self.ident, cols=self.insert_columns(),
            o=sql.SQL(" overriding system value") if self.identity_always else sql.SQL(""))

    def insert_values(self) -> sql.Composed:
        """The values of an insert from the image in s.new; a column the image does not have (added after the
        change was made) takes its default, as the change's own insert would have."""
        return sql.SQL(", ").join(
            sql.SQL("case when s.new ? {lit} then {v} else {d} end").format(
                lit=sql.Literal(c.name), v=self.typed(c, "s.new"), d=sql.SQL(c.default))  # from the catalog
            if c.default is not None else self.typed(c, "s.new")
            for c in self.writable)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def with_defaults(self, conn: psycopg.Connection) -> "Table":
        """The same table, its columns with their default expressions (for inserts whose images lack a column).
        Read only when needed: printing a default locks the table (AccessShare), which waits for DDL."""
        defaults = dict(conn.execute(
            "select a.attname, pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a "
            "on a.attrelid = d.adrelid and a.attnum = d.adnum where d.adrelid = to_regclass(%s) and a.attgenerated = ''",
            (self.name,)).fetchall())
        return dataclasses.replace(self, columns=[dataclasses.replace(c, default=defaults.get(c.name)) for c in self.columns])

    def upsert(self, source: sql.Composable, where: sql.Composable, *, update: bool) -> sql.Composed:
        """Insert the images in s.new of `source` (a FROM clause naming them s) that satisfy `where`; a key the
        table has already is overwritten (update) or left alone. With ON CONFLICT on the primary key, or, for a
        DEFERRABLE primary key (which cannot arbitrate ON CONFLICT), an update of the rows there and an insert
        of the others in one statement."""
        if not self.pk_deferrable:
            tail = (sql.SQL("on conflict ({pk}) do update set {sets}").format(pk=self.pk_columns(), sets=self.upsert_set())
                    if update else sql.SQL("on conflict ({pk}) do nothing").format(pk=self.pk_columns()))
            return sql.SQL("{ins} select {vals} {src} where {where} {tail}").format(
                ins=self.insert_into(), vals=self.insert_values(), src=source, where=where, tail=tail)
        match = self.key_match("s.new")
        head = sql.SQL("")
        if update:
            head = sql.SQL("with u as (update {T} t set {sets} {src} where {where} and {match}) ").format(
                T=self.ident, sets=self.set_from_new(), src=source, where=where, match=match)
        return sql.SQL("{head}{ins} select {vals} {src} where {where} "
                       "and not exists (select 1 from {T} t where {match})").format(
            head=head, ins=self.insert_into(), vals=self.insert_values(), src=source, where=where,
            T=self.ident, match=match)

    def upsert_set(self) -> sql.Composed:
        cols = [c for c in self.writable if c.name not in self.pk] or self.writable[:1]
        return sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c.name)) for c in cols
        )

    def pk_columns(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(k) for k in self.pk)
