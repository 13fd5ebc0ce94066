"""The roles of a deployment (design-0.2 §3): a PC's own role on the cloud, and the application's roles.

Both run as the schema owner. The privileges themselves are stated once, in SQL (ccsync.grant_pc,
ccsync.grant_tables, ccsync.grant_app; sql/grants.sql runs the same functions for DBAs who prefer psql).
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from .. import db as _db
from ..errors import CcsyncError

_NODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def pc_add(dsn: str, node: str, role: str, *, create_role: bool = False, password: str | None = None,
           new_install: bool = False) -> dict:
    """Register the PC `node` on the cloud with its own login `role` and grant the role what a PC needs.

    `create_role`: create the login role first when it does not exist (with `password`, hashed here: the server
    never sees it); `new_install`: the PC was reinstalled, its next `ccsync init` binds the new installation.
    Returns {node, role, created_role, new_install}.
    """
    if not _NODE.fullmatch(node or "") or node == "cloud":
        raise CcsyncError(f"invalid node name {node!r}: use the PC's name as installed on it (e.g. pc-reception)")
    if not role:
        raise CcsyncError("no role given: name the PC's login role on the cloud (--role)")
    with _db.connect(dsn) as conn:
        if _db.identity(conn, where="the cloud database") != "cloud":
            raise CcsyncError("this database is not the cloud: `ccsync pc add` runs on the cloud database")
        created = False
        with conn.transaction():
            exists = conn.execute("select exists (select 1 from pg_roles where rolname = %s)", (role,)).fetchone()[0]
            if not exists and create_role:
                _create_login(conn, role, password)
                created = True
            conn.execute("select ccsync.pc_add(%s, %s, %s)", (node, role, new_install))
    return {"node": node, "role": role, "created_role": created, "new_install": new_install}


def _create_login(conn: psycopg.Connection, role: str, password: str | None) -> None:
    query = sql.SQL("create role {} login").format(sql.Identifier(role))
    if password:
        hashed = conn.pgconn.encrypt_password(password.encode(), role.encode()).decode()
        query = sql.SQL("{} password {}").format(query, sql.Literal(hashed))
    try:
        conn.execute(query)
    except _db.NotAllowed as exc:
        raise CcsyncError(f"not allowed to create role {role!r} ({exc}): create it as a role with CREATEROLE, "
                          "then run `ccsync pc add` again without --create-role") from None


def grant(dsn: str, app_roles: list[str]) -> list[str]:
    """Grant application roles the tracked tables of this database (cloud or PC), now and when tables are added.

    They need nothing on schema ccsync: capture runs as its owner. Returns the roles granted.
    """
    if not app_roles:
        raise CcsyncError("no role given: name the application's role (--app-role)")
    with _db.connect(dsn) as conn:
        _db.identity(conn)
        with conn.transaction():
            for role in app_roles:
                conn.execute("select ccsync.grant_app(%s)", (role,))
    return list(app_roles)
