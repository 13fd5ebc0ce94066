"""The JSON API for scripts, mirroring the pages; a session (with its CSRF header) or a bearer token."""

from __future__ import annotations

import decimal
import json

from flask import Blueprint, abort, jsonify, request

from reconciler import conflicts as engine

from . import conflicts, history, status, sumehr
from .db import get_db

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
    return jsonify(engine.list_conflicts(get_db(), include_resolved=include == "1"))


@bp.get("/conflicts/<int:conflict_id>")
def get_conflict(conflict_id: int):
    return jsonify(conflicts.fetch(conflict_id))


@bp.post("/conflicts/<int:conflict_id>/resolve")
def resolve(conflict_id: int):
    """Body: {"keep": "local" | "cloud" | "merged", "merged": {column: value}} (merged only with keep=merged);
    a refused transaction: {"keep": "discard" | "apply-again"}; "revisit": true decides a decided record again."""
    try:
        body = json.loads(request.get_data(cache=False) or b"null", parse_float=decimal.Decimal)
    except (ValueError, UnicodeDecodeError):
        abort(400, 'the body must be JSON: {"keep": "local"} (or "cloud", or "merged" with "merged": {...})')
    if not isinstance(body, dict) or not isinstance(body.get("keep"), str):
        abort(400, 'the body must be a JSON object with "keep": "local", "cloud" or "merged"')
    unknown = sorted(set(body) - {"keep", "merged", "revisit"})
    if unknown:
        abort(400, f"unknown field(s) in the body: {', '.join(unknown)}")
    if not isinstance(body.get("revisit", False), bool):
        abort(400, '"revisit" must be true or false')
    return jsonify(conflicts.resolve(conflict_id, body["keep"], body.get("merged"), revisit=body.get("revisit", False)))


@bp.get("/sumehr")
def list_sumehr():
    """The patients whose HUB version is not the latest; ?all=1 every patient with a Sumehr; ?show=, ?q=, ?sort=,
    ?limit= and ?offset= as `ccsync sumehr list`."""
    show_all = request.args.get("all", "0")
    if show_all not in ("0", "1"):
        abort(400, "all must be 0 or 1")
    show = "all" if show_all == "1" else request.args.get("show", "not_up_to_date")
    sort = request.args.get("sort", "patient")
    limit, offset = request.args.get("limit", ""), request.args.get("offset", "0")
    if show not in ("attention", "waiting", "not_up_to_date", "up_to_date", "no_consent", "all") \
            or sort not in ("patient", "name", "state", "since") \
            or not (limit == "" or limit.isdigit() and int(limit) >= 1) or not offset.isdigit():
        abort(400, "show, sort, limit or offset is not one `ccsync sumehr list` accepts")
    if sumehr.publisher() is None:
        return jsonify([])
    return jsonify(sumehr.listing(show=show, search=request.args.get("q") or None, sort=sort,
                                  limit=int(limit) if limit else None, offset=int(offset)).rows)


@bp.post("/sumehr/<patient>/retry")
def retry_sumehr(patient: str):
    return jsonify(patient=patient, retried=sumehr.retry(patient))


@bp.get("/history")
def get_history():
    """?limit=N (20), ?kind=..., ?errors=1, ?before=ID: as the History page and `ccsync history`."""
    return jsonify(history.runs(history.limit_arg(), **history.filters()))
