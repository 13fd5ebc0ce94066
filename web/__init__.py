"""The admin panel: a Flask application factory over the reconciler (status light, conflicts, Sumehr, history).

`create_app(config)` takes a mapping: SECRET_KEY (required), and either SETTINGS (a reconciler Settings) or
LOCAL_DSN (+ CLOUD_DSN). Everything else is a Flask setting a test may override, and ccsync's own:
PROXY_HOPS (how many trusted proxies set X-Forwarded-For/-Proto/-Host: werkzeug's ProxyFix), the login
limits LOGIN_LIMIT_CLIENT and LOGIN_LIMIT_USER (Flask-Limiter, failed attempts only). The panel reads the
node's database, so it keeps working while the cloud is out of reach. It speaks French, Dutch and English
(Flask-Babel: the browser's language, or the one chosen, remembered in a cookie) and shows times in the
practice's time zone.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from reconciler import localtime
from reconciler.config import Settings
from reconciler.errors import CcsyncError

__all__ = ["create_app", "csrf"]

MIN_SECRET_LENGTH = 16

csrf = CSRFProtect()


class JSONProvider(DefaultJSONProvider):
    """Times as ISO 8601 (Flask's default is an HTTP date), numerics as their exact text."""

    @staticmethod
    def default(o):
        if isinstance(o, (dt.datetime, dt.date)):
            return o.isoformat()
        if isinstance(o, decimal.Decimal):
            return str(o)
        return DefaultJSONProvider.default(o)


class Panel(Flask):
    json_provider_class = JSONProvider


DEFAULTS = {
    "SESSION_COOKIE_NAME": "ccsync_panel",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # plain HTTP on 127.0.0.1 by default; set True when the panel is served behind HTTPS
    "SESSION_COOKIE_SECURE": False,
    "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=12),
    "WTF_CSRF_CHECK_DEFAULT": False,  # checked in auth.before_app_request, where bearer tokens are exempt
    "WTF_CSRF_TIME_LIMIT": None,  # tied to the session: a page left open all morning still works
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "STATUS_POLL_MS": 1500,
    "STATUS_PROBE_TIMEOUT": 2.0,
    # the names the panel answers to: another Host (a website rebinding its name to 127.0.0.1) gets a 400
    "TRUSTED_HOSTS": ["127.0.0.1", "localhost", "::1", "[::1]"],
    "PROXY_HOPS": 0,
    "LOGIN_LIMIT_CLIENT": "20 per 10 minutes",  # failed logins from one address
    "LOGIN_LIMIT_USER": "5 per 15 minutes",  # failed logins for one name: then it is locked until the window ends
    "RATELIMIT_STORAGE_URI": "memory://",  # one waitress process serves the panel
    "RATELIMIT_HEADERS_ENABLED": True,
}


def _settings(cfg: Mapping) -> Settings:
    if cfg.get("SETTINGS") is not None:
        settings = cfg["SETTINGS"]
    else:
        settings = Settings(local=cfg.get("LOCAL_DSN"), cloud=cfg.get("CLOUD_DSN"))
    settings.need_local()
    return settings


def create_app(config: Mapping | None = None) -> Flask:
    """Build the panel. Refuses to start without a secret key or a local database."""
    cfg = dict(config or {})
    secret = cfg.get("SECRET_KEY")
    if not secret or len(str(secret)) < MIN_SECRET_LENGTH:
        raise CcsyncError(
            f"the panel needs a secret key of at least {MIN_SECRET_LENGTH} characters: set secret_key under "
            "[panel] in ccsync.toml or $CCSYNC_PANEL_SECRET (`ccsync panel` generates one when neither is set)"
        )
    settings = _settings(cfg)

    app = Panel(__name__)
    app.config.update(DEFAULTS)
    app.config["BABEL_DEFAULT_TIMEZONE"] = localtime.zone_name(settings)
    localtime.zone(settings)  # an unknown zone is refused now, not at the first page
    app.config.update({k: v for k, v in cfg.items() if k not in ("SETTINGS", "LOCAL_DSN", "CLOUD_DSN")})
    # kept out of app.config so that no template or error page can ever print a DSN
    app.extensions["ccsync.settings"] = settings
    if app.config["PROXY_HOPS"]:
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    csrf.init_app(app)

    from . import api, auth, conflicts, db, errors, history, i18n, present, status, sumehr

    db.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    present.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(conflicts.bp)
    app.register_blueprint(sumehr.bp)
    app.register_blueprint(history.bp)
    app.register_blueprint(api.bp)
    auth.init_app(app)  # (after the blueprints: it wraps the login view with the limits)
    app.after_request(_security_headers)
    return app


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def _security_headers(response):
    """No inline script can run (patient data can hold <script>), no framing, no caching of patient data."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        headers["Cache-Control"] = "no-store"
    return response
