"""Conflicts: the open ones, one record side by side (the magnifying glass), its resolution, the resolved ones."""

from __future__ import annotations

import decimal
import json
import math

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from reconciler import conflicts as engine

from .db import get_db, local_dsn
from .present import column_order, conflict_fields

bp = Blueprint("conflicts", __name__, url_prefix="/conflicts")

MAX_ID = 2**63 - 1
CHOICES = ("local", "cloud", "other")


def fetch(conflict_id: int) -> dict:
    if conflict_id > MAX_ID:
        abort(404, f"no conflict {conflict_id}")
    return engine.get_conflict(local_dsn(), conflict_id)


def resolve(conflict_id: int, keep: str, merged: dict | None = None) -> dict:
    """Resolve as the logged-in user; the engine's errors become 400, 404 or 409 in errors.py."""
    if keep not in ("local", "cloud", "merged"):
        abort(400, "keep must be local, cloud or merged")
    if (keep == "merged") != (merged is not None):
        abort(400, "give the merged row (an object of column: value) with keep=merged, and only then")
    if merged is not None and not isinstance(merged, dict):
        abort(400, "the merged row must be an object of column: value")
    if conflict_id > MAX_ID:
        abort(404, f"no conflict {conflict_id}")
    try:
        text = None if merged is None else dump_exact(merged)
    except ValueError:
        abort(400, "the merged row holds a value that is not a finite number")
    return engine.resolve(local_dsn(), conflict_id, keep, by=g.user, merged=text)


def dump_exact(value) -> str:
    """JSON text with numerics written digit for digit (never through a float)."""
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError("not a finite number")
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _typed(field: dict, text: str):
    """The user's text for a field, typed like the values the field already holds."""
    name = field["name"]
    samples = [v for v in (field["local"], field["cloud"], field["base"]) if v is not None]
    if any(isinstance(v, bool) for v in samples):
        word = text.strip().lower()
        if word not in ("true", "false"):
            abort(400, f"{name} takes true or false")
        return word == "true"
    if samples and all(isinstance(v, (int, decimal.Decimal)) for v in samples):
        try:
            number = decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            abort(400, f"{name} takes a number")
        if not number.is_finite():
            abort(400, f"{name} takes a number")
        return number
    if any(isinstance(v, (dict, list)) for v in samples):
        try:
            return json.loads(text, parse_float=decimal.Decimal)
        except ValueError:
            abort(400, f"{name} takes a JSON value")
    return text


def merged_from_form(c: dict, form) -> dict:
    """Field by field: keep the cloud's value, take this PC's, or type another; only changes are sent."""
    merged = {}
    for field in conflict_fields(c):
        if not field["choosable"]:
            continue
        choice = form.get(f"choice:{field['name']}", "cloud")
        if choice not in CHOICES:
            abort(400, f"choose local, cloud or other for {field['name']}")
        if choice == "cloud":
            continue
        value = field["local"] if choice == "local" else _typed(field, form.get(f"other:{field['name']}", ""))
        if value != field["cloud"]:
            merged[field["name"]] = value
    return merged


@bp.route("")
def index():
    return render_template("conflicts/index.html", tab="open", rows=engine.list_conflicts(local_dsn()))


@bp.route("/resolved")
def resolved():
    rows = [c for c in engine.list_conflicts(local_dsn(), include_resolved=True) if c["status"] != "open"]
    rows.sort(key=lambda c: c["resolved_at"] or "", reverse=True)
    open_count = len(engine.list_conflicts(local_dsn()))
    return render_template("conflicts/index.html", tab="resolved", rows=rows, open_count=open_count)


@bp.route("/<int:conflict_id>")
def detail(conflict_id: int):
    c = fetch(conflict_id)
    fields = conflict_fields(c, column_order(get_db(), c["table_name"]))
    return render_template("conflicts/detail.html", c=c, fields=fields)


@bp.route("/<int:conflict_id>/resolve", methods=["POST"])
def resolve_form(conflict_id: int):
    keep = request.form.get("keep", "")
    merged = None
    if keep == "merged":
        merged = merged_from_form(fetch(conflict_id), request.form)
    c = resolve(conflict_id, keep, merged)
    what = {"kept local": "this PC's version kept", "kept cloud": "the cloud's version kept",
            "kept merged": "the merged version written"}.get(c["resolution"], c["resolution"])
    flash(f"Conflict #{c['id']} resolved: {what}. The next sync carries it to the cloud and every PC.", "success")
    return redirect(url_for("conflicts.index"))
