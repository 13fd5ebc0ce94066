"""The panel's languages (French, Dutch, English) and time zone, with Flask-Babel.

The language is the one chosen with the switch in the top bar or on the login page (remembered in a cookie for
a year), else the browser's (Accept-Language), else English. Times are shown in the practice's time zone
(`[practice] timezone` in ccsync.toml, Europe/Brussels by default).
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request
from flask_babel import Babel, get_locale

from .auth import safe_next

LANGUAGES = {"fr": "Français", "nl": "Nederlands", "en": "English"}
COOKIE = "ccsync_lang"

bp = Blueprint("lang", __name__, url_prefix="/lang")


def select_locale() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default="en")


@bp.route("/<code>")
def switch(code: str):
    """Choose a language (and remember it), then go back where the user was."""
    target = safe_next(request.args.get("next"))
    response = redirect(target)
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True,
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def init_app(app) -> None:
    Babel(app, locale_selector=select_locale)
    app.register_blueprint(bp)

    @app.context_processor
    def languages():
        return {"languages": LANGUAGES, "lang": str(get_locale())}
