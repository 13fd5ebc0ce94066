"""Connections: opening them with clear errors, the database's identity, and the schema revision check.

Every connection ccsync opens goes through `connect`; every database that must hold ccsync is opened with
`open_local`, `open_node` or `open_cloud`, which check what it claims to be and that its schema is current.
"""

from __future__ import annotations

import psycopg
from psycopg.types.string import TextLoader

from .errors import (  # noqa: F401  (CcsyncError: db.CcsyncError)
    CcsyncError, InvalidDsn, NotAllowed, NotInstalled, NotTheCloud, Refused, SchemaTooNew, SchemaTooOld, Unreachable,
    one_line,
)
from .schema import HEAD

CONNECT_TIMEOUT = 5
# the capture settings (design-0.2 §1, ccsync.value_sql): a session that builds row images (the reconciler's) uses
# them, so that its images are the capture triggers' text for text
CANONICAL = {"TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "extra_float_digits": "3",
             "bytea_output": "hex", "lc_monetary": "C"}
CLOUD_LINK = {  # the service's link to the cloud: a pulled cable is noticed in seconds, not after TCP's retries
    "connect_timeout": 3, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
    "keepalives_count": 2, "tcp_user_timeout": 8000,
}


# FATAL messages of a server that is only starting or stopping: it will answer again by itself
TRANSIENT = ("starting up", "shutting down", "not yet accepting connections", "in recovery mode")


class _Refusals(psycopg.Cursor):
    """The cursors of ccsync's connections: a privilege the database refuses becomes one line that names the
    database, the object and what grants it (`NotAllowed`); an error a ccsync function raises (SQLSTATE CC...)
    is its own one-line message."""

    where = "the database"
    side: str | None = None  # the `.where` of what it raises: local, cloud, or not known
    remedy = "connect as the owner of the database and of its ccsync schema"

    def execute(self, query, params=None, **kwargs):
        try:
            return super().execute(query, params, **kwargs)
        except psycopg.Error as exc:
            told = self.translated(exc)
            if told is exc:
                raise
            raise told from exc

    def copy(self, statement, params=None, **kwargs):
        return _Copy(self, super().copy(statement, params, **kwargs))

    def translated(self, exc: psycopg.Error) -> Exception:
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            told = NotAllowed(f"{self.where} refused role {self.connection.info.user!r}: "
                              f"{exc.diag.message_primary}; {self.remedy}")
            told.where = self.side
            return told
        if (exc.sqlstate or "").startswith("CC"):
            return CcsyncError(exc.diag.message_primary)
        return exc


class _Copy:
    """A COPY whose start is refused is told as `_Refusals` tells it (what happens inside is the caller's)."""

    def __init__(self, cursor: _Refusals, manager):
        self.cursor, self.manager = cursor, manager

    def __enter__(self):
        try:
            return self.manager.__enter__()
        except psycopg.Error as exc:
            told = self.cursor.translated(exc)
            if told is exc:
                raise
            raise told from exc

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


class _CloudRefusals(_Refusals):
    where = "the cloud database"
    side = "cloud"

    @property
    def remedy(self) -> str:
        return (f"the cloud's owner registers a PC's role and grants it what a PC needs with "
                f"`ccsync pc add NODE --role {self.connection.info.user}` (or sql/grants.sql)")


class _LocalRefusals(_Refusals):
    where = "this PC's database"
    side = "local"
    remedy = "run ccsync here as the role that installed it (the node's apply role, the database owner)"


_REFUSALS = {"cloud database": _CloudRefusals, "local database": _LocalRefusals}


def connect(dsn: str, *, role: str = "database", autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """Open a connection. The one place where psycopg's errors become ccsync's typed ones (`errors.Unusable`): a
    malformed DSN `InvalidDsn` (one line, never the DSN itself), a server that cannot be reached `Unreachable`,
    one that answered and refused the session `Refused`, a refused privilege later `NotAllowed` (`_Refusals`).
    Each says in `.where` which side it is about (`local`/`cloud`, from `role`; None for another role)."""
    if not dsn:
        raise CcsyncError(f"no {role} DSN given: pass it with --dsn (or the matching option)")
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    kwargs.setdefault("application_name", "ccsync")
    kwargs.setdefault("cursor_factory", _REFUSALS.get(role, _Refusals))
    where = "local" if role.startswith("local") else "cloud" if role.startswith("cloud") else None
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **kwargs)
    except psycopg.ProgrammingError as exc:
        # libpq's message may quote the malformed string, which may hold a password
        invalid = InvalidDsn(f"invalid {role} DSN: not a PostgreSQL connection string or URI")
        invalid.where = where
        raise invalid from exc
    except psycopg.OperationalError as exc:
        if "FATAL:" in str(exc) and not any(word in str(exc) for word in TRANSIENT):
            # the server answered and said no: its own words say why (libpq gives no SQLSTATE here)
            err: Unreachable = Refused(f"the {role} refused the connection: {one_line(exc)}; check the user, "
                                       "password and access rules in the DSN")
        else:
            err = Unreachable(f"cannot connect to the {role}: {one_line(exc)}; check the DSN and that the server runs")
        err.where = where
        raise err from exc


def is_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('ccsync.identity') is not null").fetchone()[0]


def revision(conn: psycopg.Connection) -> str | None:
    """The ccsync schema revision installed in this database (None: not installed)."""
    if conn.execute("select to_regclass('ccsync.alembic_version')").fetchone()[0] is None:
        return None
    row = conn.execute("select version_num from ccsync.alembic_version").fetchone()
    return row[0] if row else None


def identity(conn: psycopg.Connection, *, where: str = "this database", check: bool = True) -> str:
    """The name of this database ('cloud' or the node's name); NotInstalled when ccsync is absent,
    SchemaTooOld when its schema is older than this ccsync needs."""
    if not is_installed(conn):
        raise NotInstalled(
            f"ccsync is not installed in {where}: run `ccsync install --dsn DSN --name NAME` first"
        )
    row = conn.execute("select name from ccsync.identity").fetchone()
    if row is None:
        raise NotInstalled(f"ccsync is installed in {where} without an identity: run `ccsync install --dsn DSN --name NAME`")
    if check:  # (install and uninstall work on any revision)
        check_revision(conn, row[0], where=where)
    return row[0]


def check_revision(conn: psycopg.Connection, name: str, *, where: str = "this database",
                   older_is_fine: bool = False) -> None:
    """The upgrade order, enforced: a database older than this ccsync is upgraded with `ccsync install`; one
    newer than this ccsync (the cloud upgraded first) waits until ccsync is upgraded on this machine."""
    rev = revision(conn)
    if rev is not None and rev < HEAD and not older_is_fine:
        raise SchemaTooOld(
            f"{where} has ccsync schema {rev}, this ccsync needs {HEAD}: upgrade it with "
            f"`ccsync install --dsn DSN --name {name}` (the cloud first, then each PC, services stopped)"
        )
    if rev is not None and rev > HEAD:
        raise SchemaTooNew(
            f"{where} has ccsync schema {rev}, newer than this ccsync knows ({HEAD}): upgrade ccsync on this "
            "machine (`pip install --upgrade ccsync`), then run `ccsync install` on its database"
        )


def pending_push(conn: psycopg.Connection, name: str) -> int:
    """How many journal entries the node `name` wrote in this database that its push has not delivered yet."""
    return conn.execute("select count(*) from ccsync.journal where origin = %s", (name,)).fetchone()[0]


def canonical(conn: psycopg.Connection, *, local: bool = False) -> psycopg.Connection:
    """Give a session the capture settings (CANONICAL), for as long as it lasts (local: for the transaction in
    progress only, on a connection its caller goes on using)."""
    conn.execute("select set_config(k, v, %s) from unnest(%s::text[], %s::text[]) as s(k, v)",
                 (local, list(CANONICAL), list(CANONICAL.values())))
    return conn


def text_jsonb(conn: psycopg.Connection) -> psycopg.Connection:
    """Make a connection return jsonb as text: values cross between databases untouched."""
    conn.adapters.register_loader("jsonb", TextLoader)
    return conn


def open_local(dsn: str, *, autocommit: bool = True) -> psycopg.Connection:
    """This PC's database (or any ccsync database a local-only command reads), identity checked."""
    conn = text_jsonb(connect(dsn, role="local database", autocommit=autocommit))
    try:
        identity(conn, where="the local database")
    except BaseException:
        conn.close()
        raise
    return conn


def open_node(local_dsn: str) -> tuple[psycopg.Connection, str]:
    """This PC's database and its node name; refuses a database installed as the cloud."""
    node = text_jsonb(connect(local_dsn, role="local database", autocommit=True))
    try:
        canonical(node)
        name = node_name(node)
    except BaseException:
        node.close()
        raise
    return node, name


def node_name(node: psycopg.Connection) -> str:
    """The node name of this PC's database, identity checked; refuses a database installed as the cloud."""
    name = identity(node, where="the local database")
    if name == "cloud":
        raise CcsyncError("the --local database is installed as 'cloud': point --local at the PC's database")
    return name


def open_cloud(cloud_dsn: str, *, node: str | None = None, **kwargs) -> psycopg.Connection:
    """The cloud database, checked to be installed as 'cloud' at a current revision. `node`: the node this
    session syncs; a session of the schema owner or a superuser (the one-role setup) is stamped with it (its
    ccsync.origin); a PC's own role is stamped by the cloud from the role, whatever it sets."""
    return as_cloud(connect(cloud_dsn, role="cloud database", autocommit=True, **kwargs), node=node)


def as_cloud(cloud: psycopg.Connection, *, node: str | None = None) -> psycopg.Connection:
    """An open connection to the cloud made what `open_cloud` gives (closed when the check refuses it; what the
    check raises says `.where = "cloud"`, as `connect` does)."""
    cloud.autocommit = True
    text_jsonb(cloud)
    try:
        canonical(cloud)
        name = identity(cloud, where="the cloud database")
        if name != "cloud":
            raise NotTheCloud(f"the --cloud database is installed as {name!r}, not as 'cloud': check --cloud", name)
        if node is not None:
            cloud.execute("select set_config('ccsync.origin', %s, false)", (node,))
    except BaseException as exc:
        cloud.close()
        if isinstance(exc, CcsyncError) and getattr(exc, "where", None) is None:
            exc.where = "cloud"
        raise
    return cloud
