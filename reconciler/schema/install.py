"""Install, upgrade and uninstall the ccsync schema in a database (Alembic, run in code)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from .. import db as _db
from ..errors import CcsyncError
from ..nodes import registered

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK = 0x63637379  # advisory lock key: two installs on one database wait for each other
REPLICATED = ["ccsync.conflicts", "ccsync.decisions", "ccsync.sumehr_state"]  # ccsync's own tables that every database shares through the journal
NAME_RULE = "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most 63"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def _engine(dsn: str):
    _db.connect(dsn).close()  # a clear error for a wrong DSN before SQLAlchemy wraps it
    return create_engine("postgresql+psycopg://", creator=lambda: _db.connect(dsn), poolclass=NullPool)


def current_revision(conn: psycopg.Connection) -> str | None:
    if conn.execute("select to_regclass('ccsync.alembic_version')").fetchone()[0] is None:
        return None
    row = conn.execute("select version_num from ccsync.alembic_version").fetchone()
    return row[0] if row else None


def install(dsn: str, name: str, *, revision: str = "head") -> dict:
    """Create or upgrade the ccsync schema and record the database's identity, all in one transaction.

    Running it again changes nothing. Returns what was done: identity, from and to revision.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", name or ""):
        raise CcsyncError(f"invalid name {name!r}: use {NAME_RULE} characters (e.g. cloud, pc-reception)")
    engine = _engine(dsn)
    try:
        with engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            raw = conn.connection.driver_connection
            before = current_revision(raw)
            if before is not None:
                existing = raw.execute("select name from ccsync.identity").fetchone()
                if existing and existing[0] != name:
                    raise CcsyncError(
                        f"this database is already installed as {existing[0]!r}: a database keeps its name "
                        f"(run `ccsync uninstall` first to start over as {name!r})"
                    )
                _db.check_revision(raw, name, older_is_fine=True)
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            raw.execute(
                "insert into ccsync.identity (name) values (%s) on conflict (singleton) do nothing", (name,)
            )
            if name != "cloud" and raw.execute("select to_regclass('ccsync.apply_roles')").fetchone()[0]:
                # the role that installs a node applies its pulls (design-0.2 §3)
                raw.execute("insert into ccsync.apply_roles (role) values (session_user) on conflict do nothing")
            for table in REPLICATED:
                if raw.execute("select to_regclass(%s)", (table,)).fetchone()[0]:
                    raw.execute("select ccsync.track(%s::regclass, 'cloud-wins', true)", (table,))
            after = current_revision(raw)
    except DBAPIError as exc:
        orig = exc.orig
        if isinstance(orig, psycopg.errors.InsufficientPrivilege):
            raise CcsyncError(
                f"not allowed to install: {orig.diag.message_primary}; connect as the database owner"
            ) from None
        raise
    finally:
        engine.dispose()
    return {"name": name, "from_revision": before, "to_revision": after, "changed": before != after}


def uninstall(dsn: str, *, force: bool = False) -> dict:
    """Remove every capture trigger and the ccsync schema. Refuses while local changes wait to be pushed, and on
    the cloud while PCs are registered, unless forced. Nothing installed: nothing done (installed False)."""
    with _db.connect(dsn) as conn:
        if conn.execute("select to_regnamespace('ccsync')").fetchone()[0] is None:
            return {"name": None, "installed": False, "untracked": [], "dropped_pending": 0, "registered": []}
        self_name = _db.identity(conn, check=False) if _db.is_installed(conn) else None
        pending = _db.pending_push(conn, self_name) if self_name and self_name != "cloud" else 0
        if pending and not force:
            raise CcsyncError(
                f"{pending} journaled change(s) have not been pushed to the cloud: run `ccsync push` first, "
                "or uninstall with --force to drop them"
            )
        pcs = registered(conn) if self_name == "cloud" else []
        if pcs and not force:
            raise CcsyncError(
                f"{len(pcs)} PC(s) are registered on this cloud ({', '.join(pcs)}): without ccsync here they can no "
                "longer sync; retire each with `ccsync nodes remove NAME`, or uninstall with --force"
            )
        tables = [r[0] for r in conn.execute("select table_name from ccsync.tracked order by 1")]
        for table in tables:
            conn.execute("select ccsync.untrack(%s)", (table,))
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier("ccsync")))
        conn.commit()
    return {"name": self_name, "installed": True, "untracked": tables, "dropped_pending": pending if force else 0,
            "registered": pcs}
