"""The exceptions ccsync raises for what a user can fix; each message is one line that says what to do."""


def one_line(exc: BaseException | str) -> str:
    """An exception's message (or a text) collapsed to one line: server messages span several."""
    text = exc if isinstance(exc, str) else str(exc)
    return " ".join(text.split()) or (exc.__class__.__name__ if not isinstance(exc, str) else "")


class CcsyncError(Exception):
    """A problem the user can act on; its message is one line that says what to do."""


class NotInstalled(CcsyncError):
    """ccsync is not installed in a database that needs it."""


class Unreachable(CcsyncError):
    """A database cannot be reached (server down, network gone, connection lost): work offline and retry."""


class SchemaTooOld(CcsyncError):
    """A database holds an older ccsync schema revision than this ccsync needs: upgrade it with `ccsync install`."""


class NotAllowed(CcsyncError):
    """A database refused a privilege: the message names the database, the object and the command that grants it."""


class SchemaTooNew(CcsyncError):
    """A database holds a newer ccsync schema revision than this ccsync knows: upgrade ccsync on this machine."""


class Refused(Unreachable):
    """A database server answered but refused the session (wrong password, unknown role or database, access
    rules, too many connections): working offline does not fix it, a person must."""
