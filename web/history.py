"""The sync history page: runs and offline periods, newest first, with the kind and errors filters and pages."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from reconciler import history as engine_history

from .db import get_db

bp = Blueprint("history", __name__, url_prefix="/history")

MAX_LIMIT = engine_history.MAX_LIMIT


def _whole(name: str, low: int, high: int, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    if not low <= value <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return value


def limit_arg(default: int = engine_history.DEFAULT_LIMIT) -> int:
    """?limit=N, 1 to MAX_LIMIT; anything else is a 400."""
    return _whole("limit", 1, MAX_LIMIT, default)


def filters() -> dict:
    """?kind=push|pull|sync|init|login|offline, ?errors=1, ?before=ID (the next page); anything else is a 400."""
    kind = request.args.get("kind") or None
    if kind is not None and kind not in engine_history.KINDS:
        abort(400, f"kind must be one of {', '.join(engine_history.KINDS)}")
    errors = request.args.get("errors", "0")
    if errors not in ("0", "1"):
        abort(400, "errors must be 0 or 1")
    return {"kind": kind, "errors_only": errors == "1", "before": _whole("before", 1, 2**63 - 1, None)}


def runs(limit: int, **chosen) -> list[dict]:
    return engine_history.history(get_db(), limit, **chosen)


@bp.route("")
def index():
    limit, chosen = limit_arg(), filters()
    rows = runs(limit, **chosen)
    return render_template("history/index.html", runs=rows, limit=limit, kinds=engine_history.KINDS,
                           more=len(rows) == limit, **chosen)
