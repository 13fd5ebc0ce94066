"""Error pages and JSON errors: a status and one readable line, never a DSN, a password or a stack trace."""

from __future__ import annotations

import logging

import psycopg
from flask import jsonify, render_template, request
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from reconciler.conflicts import AlreadyResolved, UnknownConflict
from reconciler.errors import CcsyncError, NotAllowed, NotInstalled, Refused, Unusable, one_line
from reconciler.reasons import Reason

from .auth import is_api
from .db import opened

log = logging.getLogger("ccsync.panel")

UNREACHABLE = _l("The database of this PC cannot be reached: check that its PostgreSQL runs (details in the "
                 "panel's log).")
CLOUD_UNREACHABLE = _l("The practice's cloud cannot be reached: this PC works on its own copy, and its changes are "
                       "sent to the cloud when it is back (details in the panel's log).")
INTERNAL = _l("Something went wrong inside the panel; the details are in the panel's log.")
UNINSTALLED = _l("ccsync is no longer installed in this PC's database (it was uninstalled): stop the panel, or "
                 "install ccsync again (`ccsync install`, then `ccsync init`).")


# what /api/status answers when it cannot read this PC's database: the light then says why (the one rule's
# words for that state: reconciler.mode.decide with no facts)
LOCAL_DOWN = {"state": "offline", "mode": "offline", "reason": "local_down", "use": "local", "service": False}
# ... and when the cloud cannot be used (the rule's words for a node offline because of the cloud: the application
# works on this PC's copy); whether a service runs is not known here, so it is not said
CLOUD_DOWN = {"state": "offline", "mode": "offline", "use": "local"}


def answer(code: int, message: str, title: str | None = None, **extra):
    if is_api():
        response = jsonify(error=str(message), **extra)
    else:
        response = render_template("errors/error.html", code=code, title=title or _TITLES.get(code, _l("Error")),
                                   message=message)
    return response, code


_TITLES = {400: _l("Bad request"), 401: _l("Not logged in"), 403: _l("Forbidden"), 404: _l("Not found"),
           405: _l("Method not allowed"), 409: _l("Already done"), 413: _l("Too large"),
           429: _l("Too many attempts"), 500: _l("Internal error"), 503: _l("Not available")}


def _http(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    if isinstance(exc, CSRFError):
        return answer(400, f"{exc.description} " + _("Reload the page and try again."), _("Form expired or forged"))
    message = {404: _("There is nothing at this address."),
               405: _("This address does not accept that method."),
               413: _("The request is too large."),
               429: _("Too many failed logins: wait a few minutes, then try again.")}.get(exc.code, exc.description)
    return answer(exc.code, message)


def _ccsync(exc: CcsyncError):
    if isinstance(exc, UnknownConflict):
        return answer(404, str(exc))
    if isinstance(exc, AlreadyResolved):
        return answer(409, str(exc))
    if isinstance(exc, Unusable):
        # libpq's own words can name hosts and users: they go to the log, not to the page
        if exc.where == "cloud":
            log.warning("cloud unreachable: %s", exc)
            why = Reason.CLOUD_REFUSED if isinstance(exc, (Refused, NotAllowed)) else Reason.CLOUD_UNREACHABLE
            return answer(503, CLOUD_UNREACHABLE, _("Cloud out of reach"), **CLOUD_DOWN, reason=str(why))
        log.warning("database unreachable: %s", exc)
        return answer(503, UNREACHABLE, **LOCAL_DOWN)
    if isinstance(exc, NotInstalled):  # (the request's connection checks it first, db.get_db)
        log.warning("ccsync is not installed in this PC's database: %s", exc)
        return answer(503, UNINSTALLED, _("ccsync uninstalled"))
    return answer(400, str(exc))


def _uninstalled() -> bool:
    """Whether the ccsync schema is gone from this PC's database (an uninstall under a running panel), asked on
    the request's connection (an autocommit one: usable after the failed statement)."""
    conn = opened()
    if conn is None:
        return False
    try:
        return conn.execute("select to_regnamespace('ccsync') is null").fetchone()[0]
    except (CcsyncError, psycopg.Error):
        return False


def _database(exc: psycopg.Error):
    if isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName,
                        psycopg.errors.UndefinedFunction)) and _uninstalled():
        log.warning("ccsync is not installed in this PC's database any more")
        return answer(503, UNINSTALLED, _("ccsync uninstalled"))
    if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)):
        # the row was refused by PostgreSQL (a value of the wrong type, a constraint): the user can fix it
        primary = exc.diag.message_primary or type(exc).__name__
        return answer(400, f"the database refused the values: {primary}")
    if isinstance(exc, psycopg.OperationalError):
        log.warning("database error: %s", one_line(str(exc)))
        return answer(503, UNREACHABLE, **LOCAL_DOWN)
    log.exception("database error")
    return answer(500, INTERNAL)


def _unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http(exc)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return answer(500, INTERNAL)


def init_app(app) -> None:
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(CcsyncError, _ccsync)
    app.register_error_handler(psycopg.Error, _database)
    app.register_error_handler(Exception, _unexpected)
