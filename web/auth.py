"""Logging in and out, and the gate every request passes: a session or an API token, then CSRF for forms."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, session, url_for

from reconciler import panel_users as users

from . import csrf
from .db import get_db

bp = Blueprint("auth", __name__, url_prefix="/auth")

PUBLIC = {"auth.login"}


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
    if request.endpoint == "static":
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        # a token replaces the session entirely: a bad token never falls back to a cookie
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthorized("send the API token as `Authorization: Bearer <token>`")
        g.user = users.user_for_token(get_db(), token.strip())
        if g.user is None:
            return unauthorized("unknown or replaced API token: `ccsync panel-user token NAME` makes a new one")
        g.via_token = True
    elif session.get("user"):
        current = users.fingerprint(get_db(), session["user"])
        if current is not None and hmac.compare_digest(current, str(session.get("auth", ""))):
            g.user = session["user"]
        else:  # the user was removed or got a new password: the session ends with it
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
            session["user"] = name
            session["auth"] = users.fingerprint(get_db(), name)
            return redirect(target)
        flash("Wrong name or password.", "error")
        status = 401
    no_users = users.count(get_db()) == 0
    return render_template("auth/login.html", next=request.values.get("next", ""), no_users=no_users,
                           name=request.form.get("name", "")), status


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
