"""Conflicts: the open ones named by their record's label, one record side by side (the magnifying glass), a
decision confirmed on a page that shows exactly what it writes, and the decided ones."""

from __future__ import annotations

import decimal
import json
import math

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from markupsafe import Markup

from reconciler import conflicts as engine

from .db import get_db
from .present import column_order, conflict_fields, sentence

bp = Blueprint("conflicts", __name__, url_prefix="/conflicts")

MAX_ID = 2**63 - 1
CHOICES = ("local", "cloud", "other", "")
KEEP = ("local", "cloud", "merged", "discard", "apply-again")  # the last two for a refused transaction
DONE = {"update": _l("the record is changed on this PC now."), "insert": _l("the record is brought back on this PC now."),
        "delete": _l("the record is deleted on this PC now."), "none": _l("the record stays as it is."),
        "discard": _l("the refused changes are dropped."),
        "apply-again": _l("the changes are written again on this PC now.")}


def fetch(conflict_id: int) -> dict:
    if conflict_id > MAX_ID:
        abort(404, f"no conflict {conflict_id}")
    return engine.get_conflict(get_db(), conflict_id)


def _check(conflict_id: int, keep: str, merged: dict | None) -> str | None:
    """The decision's arguments checked (400 otherwise); the merged row as exact JSON text."""
    if keep not in KEEP:
        abort(400, "keep must be local, cloud or merged (a refused transaction: discard or apply-again)")
    if (keep == "merged") != (merged is not None):
        abort(400, "give the merged row (an object of column: value) with keep=merged, and only then")
    if merged is not None and not isinstance(merged, dict):
        abort(400, "the merged row must be an object of column: value")
    if conflict_id > MAX_ID:
        abort(404, f"no conflict {conflict_id}")
    try:
        return None if merged is None else dump_exact(merged)
    except ValueError:
        abort(400, "the merged row holds a value that is not a finite number")


def resolve(conflict_id: int, keep: str, merged: dict | None = None, *, revisit: bool = False) -> dict:
    """Decide as the logged-in user (revisit: decide a decided record again); the engine's errors become 400,
    404 or 409 in errors.py."""
    text = _check(conflict_id, keep, merged)
    return engine.resolve(get_db(), conflict_id, keep, by=g.user, merged=text, revisit=revisit)


def preview(conflict_id: int, keep: str, merged: dict | None = None, *, revisit: bool = False) -> dict:
    text = _check(conflict_id, keep, merged)
    return engine.preview(get_db(), conflict_id, keep, merged=text, revisit=revisit)


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


def in_place(c: dict, field: dict):
    """A field's value in place now: the cloud's until the first decision (this PC's if the cloud deleted the
    record); for a decided record, the decision in force (None: it deleted the record)."""
    if c["status"] != "open":
        return None if c["resolved_row"] is None else c["resolved_row"].get(field["name"])
    return field["cloud"] if c["cloud_row"] is not None else field["local"]


def merged_from_form(c: dict, form) -> dict:
    """Field by field: this PC's value, the cloud's, another typed one, or (no choice) the value in place now;
    only the fields that change are sent."""
    merged = {}
    absent = c["cloud_row"] is None if c["status"] == "open" else c["resolved_row"] is None
    for field in conflict_fields(c):
        if not field["choosable"]:
            continue
        choice = form.get(f"choice:{field['name']}", "")
        if choice not in CHOICES or (choice == "local" and c["local_row"] is None) or \
                (choice == "cloud" and c["cloud_row"] is None):
            abort(400, f"choose local, cloud or other for {field['name']}")
        if choice == "":
            continue
        value = {"local": field["local"], "cloud": field["cloud"]}.get(choice)
        if choice == "other":
            value = _typed(field, form.get(f"other:{field['name']}", ""))
        if value != in_place(c, field) or absent:
            merged[field["name"]] = value
    return merged


def _decision(conflict_id: int, form) -> tuple[dict, str, dict | None, bool]:
    """The conflict and the decision a form asks for: keep, the merged row (from the merge form's fields,
    or from the confirmation page's exact JSON), and whether it decides a decided record again."""
    c = fetch(conflict_id)
    keep = form.get("keep", "")
    revisit = form.get("revisit") == "1"
    merged = None
    if keep == "merged":
        if "merged_json" in form:
            try:
                merged = json.loads(form["merged_json"], parse_float=decimal.Decimal)
            except ValueError:
                abort(400, "the merged row is not valid JSON")
        else:
            merged = merged_from_form(c, form)
    return c, keep, merged, revisit


@bp.route("")
def index():
    return render_template("conflicts/index.html", tab="open", rows=engine.list_conflicts(get_db()))


@bp.route("/resolved")
def resolved():
    rows = [c for c in engine.list_conflicts(get_db(), include_resolved=True) if c["status"] != "open"]
    rows.sort(key=lambda c: c["resolved_at"] or "", reverse=True)
    open_count = len(engine.list_conflicts(get_db()))
    return render_template("conflicts/index.html", tab="resolved", rows=rows, open_count=open_count)


@bp.route("/<int:conflict_id>")
def detail(conflict_id: int):
    c = fetch(conflict_id)
    fields = conflict_fields(c, column_order(get_db(), c["table_name"]))
    return render_template("conflicts/detail.html", c=c, fields=fields, in_place=in_place)


@bp.route("/<int:conflict_id>/confirm", methods=["POST"])
def confirm(conflict_id: int):
    """The decision, not yet written: exactly what it writes, where, and a button to confirm it."""
    c, keep, merged, revisit = _decision(conflict_id, request.form)
    if (c["status"] == "open") == revisit:  # decided meanwhile, or open again: the record as it is now
        return redirect(url_for("conflicts.detail", conflict_id=conflict_id))
    what = preview(conflict_id, keep, merged, revisit=revisit)
    merged_json = None if merged is None else dump_exact(merged)
    return render_template("conflicts/confirm.html", c=c, keep=keep, what=what, merged_json=merged_json,
                           revisit=revisit)


@bp.route("/<int:conflict_id>/resolve", methods=["POST"])
def resolve_form(conflict_id: int):
    c, keep, merged, revisit = _decision(conflict_id, request.form)
    before = preview(conflict_id, keep, merged, revisit=revisit) if (c["status"] == "open") != revisit else None
    done = resolve(conflict_id, keep, merged, revisit=revisit)
    action = before["action"] if before else "none"
    name = done.get("label") or "{} #{}".format(done["table_name"], done["id"])
    flash(sentence(_("Decision recorded for %(record)s: %(what)s The next sync carries it to the cloud and every PC."),
                   record=name, what=Markup.escape(str(DONE[action]))), "success")
    return redirect(url_for("conflicts.index"))
