"""Panel users: accounts that may log in to the admin panel, with hashed passwords, API tokens and sessions.

Passwords get werkzeug's salted, deliberately slow hash. API tokens and session ids are 256 random bits, so a
plain SHA-256 suffices for them and lets a request find its user with one indexed lookup. Sessions live in the
node's database (ccsync.panel_sessions): logging out, a new password or removing the user ends them on the
server, so a copy of the cookie is worth nothing afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

import psycopg
from werkzeug.security import check_password_hash, generate_password_hash

from reconciler import db as _db
from reconciler.errors import CcsyncError

MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "ccsync_"


@functools.cache
def _dummy_hash() -> str:
    # checked when the name is unknown, so that a wrong name costs as much time as a wrong password
    return generate_password_hash(secrets.token_hex(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100 or any(ch < " " or ch == "\x7f" for ch in name):
        raise CcsyncError("a panel user's name is 1 to 100 printable characters")
    return name


def check_password(password: str) -> str:
    if password is None or len(password) < MIN_PASSWORD_LENGTH:
        raise CcsyncError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def _connect(local_dsn: str) -> psycopg.Connection:
    """This PC's database as every local command opens it (db.open_local), holding the panel's tables."""
    conn = _db.open_local(local_dsn)
    try:
        ensure_table(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def ensure_table(conn: psycopg.Connection) -> None:
    if conn.execute("select to_regclass('ccsync.panel_users')").fetchone()[0] is None:
        raise CcsyncError("this database's ccsync schema predates the panel: run `ccsync install` to upgrade it")


# -- for the command line -------------------------------------------------------------------------------
def add(local_dsn: str, name: str, password: str, *, token: bool = False, replace: bool = False) -> dict:
    """Create a user (with replace, set an existing user's password): {name, created, token}; token is the
    new API token when asked for one (shown once: only its hash is kept), else None."""
    name, password = check_name(name), check_password(password)
    new = _new_token() if token else None
    with _connect(local_dsn) as conn:
        exists = conn.execute("select 1 from ccsync.panel_users where name = %s", (name,)).fetchone()
        if exists and not replace:
            raise CcsyncError(f"panel user {name!r} exists: add --replace to set a new password")
        if exists:
            conn.execute("delete from ccsync.panel_sessions where user_name = %s", (name,))  # a new password
        conn.execute(
            "insert into ccsync.panel_users (name, password_hash, api_token_hash) values (%s, %s, %s) "
            "on conflict (name) do update set password_hash = excluded.password_hash, "
            "api_token_hash = coalesce(excluded.api_token_hash, ccsync.panel_users.api_token_hash)",
            (name, generate_password_hash(password), token_hash(new) if new else None),
        )
    return {"name": name, "created": not exists, "token": new}


def new_token(local_dsn: str, name: str) -> str:
    """A new API token for a user; the previous one stops working."""
    name = check_name(name)
    token = _new_token()
    with _connect(local_dsn) as conn:
        cur = conn.execute("update ccsync.panel_users set api_token_hash = %s where name = %s",
                           (token_hash(token), name))
        if cur.rowcount == 0:
            raise CcsyncError(f"no panel user {name!r}: `ccsync panel-user list` shows them")
    return token


def remove(local_dsn: str, name: str) -> None:
    name = check_name(name)
    with _connect(local_dsn) as conn:
        if conn.execute("delete from ccsync.panel_users where name = %s", (name,)).rowcount == 0:
            raise CcsyncError(f"no panel user {name!r}: `ccsync panel-user list` shows them")


def list_users(local_dsn: str) -> list[dict]:
    with _connect(local_dsn) as conn:
        rows = conn.execute(
            "select name, api_token_hash is not null, created_at, last_login_at from ccsync.panel_users order by name"
        ).fetchall()
    return [{"name": name, "has_token": has_token, "created_at": created_at.isoformat(),
             "last_login_at": last_login_at.isoformat() if last_login_at else None}
            for name, has_token, created_at, last_login_at in rows]


def count(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from ccsync.panel_users").fetchone()[0]


# -- for the panel (on the request's connection) -----------------------------------------------------------
def authenticate(conn: psycopg.Connection, name: str, password: str) -> str | None:
    """The user's name when the password matches, else None; a success stamps last_login_at."""
    row = conn.execute("select name, password_hash from ccsync.panel_users where name = %s",
                       ((name or "").strip(),)).fetchone()
    if row is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    found, password_hash = row
    if not check_password_hash(password_hash, password or ""):
        return None
    conn.execute("update ccsync.panel_users set last_login_at = now() where name = %s", (found,))
    return found


def user_for_token(conn: psycopg.Connection, token: str) -> str | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = conn.execute("select name from ccsync.panel_users where api_token_hash = %s",
                       (token_hash(token),)).fetchone()
    return row[0] if row else None


def open_session(conn: psycopg.Connection, name: str, lifetime_seconds: int) -> str:
    """A new session for a user who just logged in: its id (for the signed cookie; only its hash is kept)."""
    sid = secrets.token_urlsafe(32)
    conn.execute("delete from ccsync.panel_sessions where expires_at < now()")
    conn.execute("insert into ccsync.panel_sessions (id_hash, user_name, expires_at) "
                 "values (%s, %s, now() + make_interval(secs => %s))", (token_hash(sid), name, lifetime_seconds))
    return sid


def session_user(conn: psycopg.Connection, sid: str) -> str | None:
    """The user of a live session (None: logged out, expired, or the user removed or given a new password)."""
    row = conn.execute(
        "update ccsync.panel_sessions set last_seen_at = now() where id_hash = %s and expires_at > now() "
        "returning user_name",
        (token_hash(sid),),
    ).fetchone()
    return row[0] if row else None


def close_session(conn: psycopg.Connection, sid: str) -> None:
    conn.execute("delete from ccsync.panel_sessions where id_hash = %s", (token_hash(sid),))
