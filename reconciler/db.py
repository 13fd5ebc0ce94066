"""Connections: opening them with clear errors, and the small helpers every module shares."""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql

from .errors import CcsyncError, NotInstalled

CONNECT_TIMEOUT = 5


def connect(dsn: str, *, role: str = "database", autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """Open a connection; a wrong or unreachable DSN becomes one readable line (never the DSN itself)."""
    if not dsn:
        raise CcsyncError(f"no {role} DSN given: pass it with --dsn (or the matching option)")
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    kwargs.setdefault("application_name", "ccsync")
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **kwargs)
    except psycopg.ProgrammingError as exc:
        # libpq's message may quote the malformed string, which may hold a password
        raise CcsyncError(f"invalid {role} DSN: not a PostgreSQL connection string or URI") from exc
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or exc.__class__.__name__
        raise CcsyncError(f"cannot connect to the {role}: {reason}; check the DSN and that the server runs") from exc


def is_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('ccsync.identity') is not null").fetchone()[0]


def identity(conn: psycopg.Connection) -> str:
    """The name of this database ('cloud' or the node's name); NotInstalled when ccsync is absent."""
    if not is_installed(conn):
        raise NotInstalled(
            "ccsync is not installed in this database: run `ccsync install --dsn DSN --name NAME` first"
        )
    row = conn.execute("select name from ccsync.identity").fetchone()
    if row is None:
        raise NotInstalled("ccsync is installed without an identity: run `ccsync install --dsn DSN --name NAME`")
    return row[0]


@contextlib.contextmanager
def applying(conn: psycopg.Connection, origin: str):
    """A transaction whose changes carry their origin (not journaled on a node, journaled with it on the cloud)."""
    with conn.transaction():
        conn.execute("select set_config('ccsync.origin', %s, true)", (origin,))
        yield conn


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(table)])
