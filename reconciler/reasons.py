"""Why the node is not simply online, and what went wrong, in words a person reads: one code per class, one sentence.

The code is what ccsync stores (`ccsync.state.reason`, `last_error_code`, `ccsync.history.reason`) and what the
panel translates; the sentence is the English text `ccsync status` prints and `last_error` holds. Raw exception
texts (which can name hosts, users, or quote a row) go to the log, never to the database or a page.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import psycopg

from .errors import CcsyncError, NotInstalled, Refused, SchemaTooNew, SchemaTooOld, Unreachable, one_line


class Reason(StrEnum):
    CLOUD_UNREACHABLE = "cloud_unreachable"
    CLOUD_REFUSED = "cloud_refused"
    CLOUD_NOT_READY = "cloud_not_ready"
    LOCAL_DOWN = "local_down"
    SERVICE_STOPPED = "service_stopped"
    SYNC_FAILING = "sync_failing"
    CONNECTION_LOST = "connection_lost"
    SYNC_ERROR = "sync_error"
    INTERNAL = "internal"


SENTENCES = {
    Reason.CLOUD_UNREACHABLE: "the cloud cannot be reached (no network, or its server is down); "
                              "ccsync keeps trying by itself",
    Reason.CLOUD_REFUSED: "the cloud refused this PC's login (user name, password or access rules): "
                          "an administrator must fix this PC's cloud DSN",
    Reason.CLOUD_NOT_READY: "the cloud database does not match this PC's ccsync (ccsync missing there, or another "
                            "version): see the last error for what to upgrade",
    Reason.LOCAL_DOWN: "this PC's database is down: check that its PostgreSQL service runs",
    Reason.SERVICE_STOPPED: "the sync service (`ccsync run`) is not running on this PC: nothing is synchronized "
                            "until it is started again",
    Reason.SYNC_FAILING: "synchronization keeps failing: see the last error and the service's log",
    Reason.CONNECTION_LOST: "the connection to a database was lost during a sync; the work in flight was rolled "
                            "back and is retried",
    Reason.SYNC_ERROR: "a sync failed",
    Reason.INTERNAL: "an unexpected error stopped a sync; the details are in the log",
}

log = logging.getLogger("ccsync.reasons")


def sentence(reason: str | None) -> str | None:
    """The English sentence of a stored code (an unknown code is shown as it is)."""
    if reason is None:
        return None
    try:
        return SENTENCES[Reason(reason)]
    except ValueError:
        return reason


def of(exc: BaseException, *, where: str = "cloud") -> Reason:
    """The class of an error. `where`: the database being reached when it happened ('cloud' or 'local'), unless
    the error says which."""
    where = getattr(exc, "where", None) or where
    if isinstance(exc, Unreachable):
        if where == "local":
            return Reason.LOCAL_DOWN
        return Reason.CLOUD_REFUSED if isinstance(exc, Refused) else Reason.CLOUD_UNREACHABLE
    if isinstance(exc, (NotInstalled, SchemaTooOld, SchemaTooNew)) and getattr(exc, "where", None) == "cloud":
        return Reason.CLOUD_NOT_READY
    if isinstance(exc, psycopg.OperationalError):
        return Reason.CONNECTION_LOST
    if isinstance(exc, CcsyncError):
        return Reason.SYNC_ERROR
    return Reason.INTERNAL


def explain(exc: BaseException, *, where: str = "cloud") -> tuple[Reason, str]:
    """(code, sentence) to store and show. The raw text is for the log: the command line prints its error,
    the service logs it (its first line above DEBUG: a server's detail line may quote a row)."""
    reason = of(exc, where=where)
    if isinstance(exc, CcsyncError) and reason in (Reason.SYNC_ERROR, Reason.CLOUD_NOT_READY):
        return reason, one_line(str(exc))  # ccsync's own words: one line that says what to do
    log.debug("%s: %s", SENTENCES[reason], one_line(str(exc)))
    return reason, SENTENCES[reason]
