"""Creating on a node the tracked tables it lacks, from the cloud's catalog (columns, types, constraints)."""

from __future__ import annotations

import psycopg
from psycopg import sql


def _qualified(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def _ensure_types(cloud, node, oid: int) -> None:
    """Enum types used by the table's columns (directly or as arrays) must exist on the node first."""
    for schema, name, typ in cloud.execute(
        """
        select distinct n.nspname, t.typname, t.oid
          from pg_attribute a
          join pg_type at on at.oid = a.atttypid
          join pg_type t on t.oid = case when at.typelem <> 0 and at.typlen = -1 then at.typelem else at.oid end
          join pg_namespace n on n.oid = t.typnamespace
         where a.attrelid = %s and a.attnum > 0 and not a.attisdropped and t.typtype = 'e'
        """,
        (oid,),
    ).fetchall():
        exists = node.execute(
            "select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname = %s and t.typname = %s",
            (schema, name),
        ).fetchone()
        if exists:
            continue
        labels = [r[0] for r in cloud.execute("select enumlabel from pg_enum where enumtypid = %s order by enumsortorder", (typ,))]
        node.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        node.execute(
            sql.SQL("create type {} as enum ({})").format(
                _qualified(schema, name), sql.SQL(", ").join(sql.Literal(x) for x in labels)
            )
        )


def create_table(cloud: psycopg.Connection, node: psycopg.Connection, schema: str, rel: str) -> list[sql.Composed]:
    """Create one table on the node like the cloud's; returns its foreign keys, to add once all tables exist."""
    oid = cloud.execute(
        "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s",
        (schema, rel),
    ).fetchone()[0]
    _ensure_types(cloud, node, oid)
    cols = []
    for name, typ, notnull, default, identity, generated in cloud.execute(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
          from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where a.attrelid = %s and a.attnum > 0 and not a.attisdropped order by a.attnum
        """,
        (oid,),
    ):
        parts = [sql.Identifier(name), sql.SQL(typ)]
        if generated in ("s", "v"):  # "v": PostgreSQL 18's virtual generated column
            parts.append(sql.SQL("generated always as ({}) {}").format(
                sql.SQL(default), sql.SQL("stored" if generated == "s" else "virtual")))
        elif identity:
            parts.append(sql.SQL("generated {} as identity").format(sql.SQL("always" if identity == "a" else "by default")))
        elif default is not None:
            _ensure_sequences(cloud, node, default)
            parts.append(sql.SQL("default {}").format(sql.SQL(default)))
        if notnull:
            parts.append(sql.SQL("not null"))
        cols.append(sql.SQL(" ").join(parts))
    for name, definition in cloud.execute(
        "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = %s and contype in ('p', 'u', 'c', 'x') order by contype, conname",
        (oid,),
    ):
        cols.append(sql.SQL("constraint {} {}").format(sql.Identifier(name), sql.SQL(definition)))
    node.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    node.execute(sql.SQL("create table {} ({})").format(_qualified(schema, rel), sql.SQL(", ").join(cols)))
    for (definition,) in cloud.execute(
        "select pg_get_indexdef(i.indexrelid) from pg_index i where i.indrelid = %s and not exists "
        "(select 1 from pg_constraint c where c.conindid = i.indexrelid)",
        (oid,),
    ):
        node.execute(sql.SQL(definition))
    return [
        sql.SQL("alter table {} add constraint {} {}").format(_qualified(schema, rel), sql.Identifier(n), sql.SQL(d))
        for n, d in cloud.execute(
            "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = %s and contype = 'f'", (oid,)
        )
    ]


def _ensure_sequences(cloud, node, default: str) -> None:
    for (seq,) in cloud.execute(
        "select format('%%I.%%I', n.nspname, c.relname) from pg_depend d join pg_class c on c.oid = d.refobjid "
        "join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'S' and %s like '%%' || c.relname || '%%' "
        "group by 1",
        (default,),
    ):
        node.execute(sql.SQL("create sequence if not exists {}").format(sql.SQL(seq)))


def dependency_order(cloud: psycopg.Connection, tables: list[str]) -> list[str]:
    """Tables with the ones they reference first (parents before children), so a copy never breaks a foreign key."""
    oids = {name: cloud.execute("select to_regclass(%s)::oid", (name,)).fetchone()[0] for name in tables}
    by_oid = {v: k for k, v in oids.items()}
    deps = {name: set() for name in tables}
    for child, parent in cloud.execute(
        "select conrelid::oid, confrelid::oid from pg_constraint where contype = 'f' and conrelid = any(%s)",
        (list(oids.values()),),
    ):
        if parent in by_oid and parent != child:
            deps[by_oid[child]].add(by_oid[parent])
    ordered: list[str] = []
    while deps:
        ready = sorted(n for n, d in deps.items() if not d - set(ordered))
        if not ready:  # a cycle: keep the remaining order as is
            ready = sorted(deps)
        for n in ready:
            ordered.append(n)
            deps.pop(n)
    return ordered
