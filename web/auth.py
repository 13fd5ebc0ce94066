"""Logging in and out, and the gate every request passes: a session or an API token, then CSRF for forms.

A session is a row in the node's database (the signed cookie carries its random id): logging out ends it on
the server, and so do a new password and the user's removal. Failed logins are logged and limited with
Flask-Limiter, per client address and per user name; past the limit the name (or the address) is locked
until the window ends, before any password is checked (each check costs a deliberately slow hash).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import (Blueprint, Response, current_app, flash, g, jsonify, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import SecurityError

from reconciler import panel_users as users

from . import csrf
from .db import get_db

bp = Blueprint("auth", __name__, url_prefix="/auth")
log = logging.getLogger("ccsync.panel.auth")

PUBLIC = {"auth.login", "lang.switch"}


def is_api() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def unauthorized(message: str):
    response = jsonify(error=message)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="ccsync panel"'
    return response


@bp.before_app_request
def gate():
    """Who is asking: an API token (Authorization: Bearer) or the session; nothing else gets through."""
    g.user = None
    g.via_token = False
    if isinstance(request.routing_exception, SecurityError):
        # a Host name the panel does not answer to (TRUSTED_HOSTS): 400 before anything else, in plain text (no
        # page can be built for a host the panel does not know)
        log.warning("refused a request for host %r from %s", request.headers.get("Host", "")[:100], request.remote_addr)
        return Response("400 Bad Request: this panel does not answer to that host name (TRUSTED_HOSTS)\n", 400,
                        mimetype="text/plain")
    if request.endpoint == "static":
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        # a token replaces the session entirely: a bad token never falls back to a cookie
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthorized("send the API token as `Authorization: Bearer <token>`")
        g.user = users.user_for_token(get_db(), token.strip())
        if g.user is None:
            return unauthorized("unknown or replaced API token: `ccsync panel-user token NAME` makes a new one")
        g.via_token = True
    elif session.get("sid"):
        g.user = users.session_user(get_db(), str(session["sid"]))
        if g.user is None:  # logged out, expired, new password, user removed: the cookie is worth nothing
            session.clear()

    if g.user is None and request.endpoint not in PUBLIC:
        if is_api():
            return unauthorized("log in, or send `Authorization: Bearer <token>` (`ccsync panel-user add --token`)")
        wanted = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=wanted))
    if not g.via_token:
        # browsers cannot add an Authorization header to a cross-site request, so token calls need no CSRF token
        csrf.protect()
    return None


def safe_next(target: str | None) -> str:
    """Only a path on this site, so that a crafted login link cannot send the user elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("status.index")


def _login_name() -> str:
    return "user:" + request.form.get("name", "").strip().casefold()


def _failed(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.values.get("next"))
    if g.user is not None and request.method == "GET":
        return redirect(target)
    status = 200
    if request.method == "POST":
        name = users.authenticate(get_db(), request.form.get("name", ""), request.form.get("password", ""))
        if name is not None:
            session.clear()  # a fresh session: nothing from before the login survives
            session.permanent = True
            lifetime = int(current_app.permanent_session_lifetime.total_seconds())
            session["sid"] = users.open_session(get_db(), name, lifetime)
            log.info("panel login: %r from %s", name, request.remote_addr)
            return redirect(target)
        log.warning("failed panel login for %r from %s", request.form.get("name", "")[:100], request.remote_addr)
        flash(_("Wrong name or password."), "error")
        status = 401
    no_users = users.count(get_db()) == 0
    return render_template("auth/login.html", next=request.values.get("next", ""), no_users=no_users,
                           name=request.form.get("name", "")), status


@bp.route("/logout", methods=["POST"])
def logout():
    if session.get("sid"):
        users.close_session(get_db(), str(session["sid"]))
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


def _locked(limit):
    log.warning("panel login locked: %s failed attempts (%s) for %s from %s", limit.limit, limit.key,
                request.form.get("name", "")[:100], request.remote_addr)


def init_app(app) -> None:
    """Limits on failed logins, per client address and per user name (this app's own limiter and counts)."""
    limiter = Limiter(get_remote_address, app=app, on_breach=_locked)
    view = limiter.limit(lambda: current_app.config["LOGIN_LIMIT_CLIENT"], methods=["POST"], deduct_when=_failed)(login)
    view = limiter.limit(lambda: current_app.config["LOGIN_LIMIT_USER"], key_func=_login_name, methods=["POST"],
                         deduct_when=_failed)(view)
    app.view_functions["auth.login"] = view  # this app's limiter checks the login, with this app's counts
    app.extensions["ccsync.limiter"] = limiter
