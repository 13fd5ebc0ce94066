"""The node's database for one request: a connection on `g`, opened on first use and closed at teardown.

Every view and the library functions it calls work on this one connection (`reconciler.conflicts`,
`history`, `status`, the Sumehr listing take it), so a request opens the node's database at most once.
"""

from __future__ import annotations

import psycopg
from flask import current_app, g

from reconciler import db as _db
from reconciler.config import Settings


def settings() -> Settings:
    return current_app.extensions["ccsync.settings"]


def local_dsn() -> str:
    return settings().need_local()


def get_db() -> psycopg.Connection:
    """This request's connection to the node's database, as `db.open_local` opens it: identity and schema
    revision checked, jsonb as text, autocommit (each statement stands alone unless a function opens a
    transaction)."""
    if "db" not in g:
        g.db = _db.open_local(local_dsn())
    return g.db


def opened() -> psycopg.Connection | None:
    """This request's connection if it is open already (else None: nothing is opened)."""
    return g.get("db")


def close_db(exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app) -> None:
    app.teardown_appcontext(close_db)
