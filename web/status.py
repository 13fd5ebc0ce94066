"""The status page: the node's mode, what waits to be pushed and pulled, last sync and last error."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from reconciler import status as engine_status

from .db import get_db, settings

bp = Blueprint("status", __name__)


def current() -> dict:
    return engine_status.current(settings(), conn=get_db(), probe_timeout=current_app.config["STATUS_PROBE_TIMEOUT"])


@bp.route("/")
def index():
    return render_template("status/index.html", status=current())
