"""The exceptions ccsync raises for what a user can fix; each message is one line that says what to do."""


def one_line(exc: BaseException | str) -> str:
    """An exception's message (or a text) collapsed to one line: server messages span several."""
    text = exc if isinstance(exc, str) else str(exc)
    return " ".join(text.split()) or (exc.__class__.__name__ if not isinstance(exc, str) else "")


def first_line(exc: BaseException) -> str:
    """An exception's first line (its class name when it has no text): what a log says of it above debug, since
    a server's detail lines may quote a row."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CcsyncError(Exception):
    """A problem the user can act on; its message is one line that says what to do."""


class Unusable(CcsyncError):
    """A database cannot be used as configured (it cannot be reached, it refused the session or a privilege, the
    DSN is not one): nothing a request's values could fix. Raised only by `reconciler.db`, which turns psycopg's
    errors into these; the message may name hosts and roles (the panel logs it and shows its own words)."""

    where: str | None = None  # the database it is about: "local" (this PC's), "cloud", or None (not known)


class NotInstalled(CcsyncError):
    """ccsync is not installed in a database that needs it."""


class NotTheCloud(CcsyncError):
    """A database installed as a PC's (`.name`) where the cloud's is needed; a command may say it in its own words."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


class Unreachable(Unusable):
    """A database cannot be reached (server down, network gone, connection lost): work offline and retry."""


class SchemaTooOld(CcsyncError):
    """A database holds an older ccsync schema revision than this ccsync needs: upgrade it with `ccsync install`."""


class NotAllowed(Unusable):
    """A database refused a privilege: the message names the database, the object and the command that grants it."""


class SchemaTooNew(CcsyncError):
    """A database holds a newer ccsync schema revision than this ccsync knows: upgrade ccsync on this machine."""


class Refused(Unreachable):
    """A database server answered but refused the session (wrong password, unknown role or database, access
    rules, too many connections): working offline does not fix it, a person must."""


class InvalidDsn(Unusable):
    """A DSN that is not a PostgreSQL connection string or URI (the message never quotes it: it may hold a
    password)."""
