"""The node's database for one request: a connection on `g`, opened on first use and closed at teardown."""

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
    """This request's connection to the node's database (autocommit: each statement stands alone)."""
    if "db" not in g:
        g.db = _db.connect(local_dsn(), role="local database", autocommit=True)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app) -> None:
    app.teardown_appcontext(close_db)
