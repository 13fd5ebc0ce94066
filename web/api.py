"""The JSON API for scripts, mirroring the pages; a session (with its CSRF header) or a bearer token."""

from __future__ import annotations

import decimal
import json

from flask import Blueprint, abort, jsonify, request

from reconciler import conflicts as engine

from . import conflicts, history, status, sumehr
from .db import local_dsn

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/status")
def get_status():
    return jsonify(status.current())


@bp.get("/conflicts")
def list_conflicts():
    """Open conflicts; ?all=1 adds the resolved ones."""
    include = request.args.get("all", "0")
    if include not in ("0", "1"):
        abort(400, "all must be 0 or 1")
    return jsonify(engine.list_conflicts(local_dsn(), include_resolved=include == "1"))


@bp.get("/conflicts/<int:conflict_id>")
def get_conflict(conflict_id: int):
    return jsonify(conflicts.fetch(conflict_id))


@bp.post("/conflicts/<int:conflict_id>/resolve")
def resolve(conflict_id: int):
    """Body: {"keep": "local" | "cloud" | "merged", "merged": {column: value}} (merged only with keep=merged)."""
    try:
        body = json.loads(request.get_data(cache=False) or b"null", parse_float=decimal.Decimal)
    except (ValueError, UnicodeDecodeError):
        abort(400, 'the body must be JSON: {"keep": "local"} (or "cloud", or "merged" with "merged": {...})')
    if not isinstance(body, dict) or not isinstance(body.get("keep"), str):
        abort(400, 'the body must be a JSON object with "keep": "local", "cloud" or "merged"')
    unknown = sorted(set(body) - {"keep", "merged"})
    if unknown:
        abort(400, f"unknown field(s) in the body: {', '.join(unknown)}")
    return jsonify(conflicts.resolve(conflict_id, body["keep"], body.get("merged")))


@bp.get("/sumehr")
def list_sumehr():
    """The patients whose HUB version is not the latest; ?all=1 lists every patient with the flag on."""
    show_all = request.args.get("all", "0")
    if show_all not in ("0", "1"):
        abort(400, "all must be 0 or 1")
    return jsonify(sumehr.patients(failed_only=show_all == "0"))


@bp.post("/sumehr/<patient>/retry")
def retry_sumehr(patient: str):
    return jsonify(patient=patient, retried=sumehr.retry(patient))


@bp.get("/history")
def get_history():
    return jsonify(history.runs(history.limit_arg(default=20)))
