"""The sync history page: recent runs with direction, counts, duration and errors."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from reconciler import history as engine_history

from .db import local_dsn

bp = Blueprint("history", __name__, url_prefix="/history")

MAX_LIMIT = 1000


def limit_arg(default: int = 50) -> int:
    """?limit=N, 1 to MAX_LIMIT; anything else is a 400."""
    raw = request.args.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    if not 1 <= value <= MAX_LIMIT:
        abort(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return value


def runs(limit: int) -> list[dict]:
    return engine_history.history(local_dsn(), limit)


@bp.route("")
def index():
    limit = limit_arg()
    return render_template("history/index.html", runs=runs(limit), limit=limit)
