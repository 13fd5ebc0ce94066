"""The Sumehr HUB page: patients whose Sumehr on the HUB is not the latest, and Retry now."""

from __future__ import annotations

import importlib
from types import ModuleType

import psycopg
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import ServiceUnavailable

from reconciler.errors import CcsyncError

from .db import settings

bp = Blueprint("sumehr", __name__, url_prefix="/sumehr")

NOT_AVAILABLE = "Sumehr publication is not part of this version of ccsync"


def publisher() -> ModuleType | None:
    """reconciler.sumehr.publisher, imported on first use; None while this ccsync has no Sumehr publisher."""
    try:
        return importlib.import_module("reconciler.sumehr.publisher")
    except ModuleNotFoundError as exc:
        if exc.name == "reconciler.sumehr.publisher":
            return None
        raise


def _not_set_up(exc: CcsyncError) -> bool:
    """A configuration the publisher cannot work with (not a database that cannot be reached)."""
    return not isinstance(exc.__cause__, psycopg.Error)


def patients(failed_only: bool = True) -> list[dict]:
    """The patients not current on the HUB (every patient with the flag on, with failed_only=False).

    503 with the publisher's own words when Sumehr publication is not set up on this PC."""
    module = publisher()
    if module is None:
        return []
    try:
        return module.list_patients(settings(), failed_only=failed_only)
    except CcsyncError as exc:
        if _not_set_up(exc):
            abort(503, f"Sumehr publication is not set up on this PC: {exc}")
        raise


def retry(patient: str) -> int:
    """Ask the publisher to try this patient again now; 404 for a patient it does not list."""
    module = publisher()
    if module is None:
        abort(503, NOT_AVAILABLE)
    if not 1 <= len(patient) <= 64 or not patient.isprintable():
        abort(400, "a patient is named by 1 to 64 printable characters")
    if patient not in {p["patient"] for p in patients(failed_only=False)}:
        abort(404, f"no patient {patient} keeps a Sumehr on the HUB")
    try:
        return module.retry(settings(), patient)
    except CcsyncError as exc:
        if _not_set_up(exc):  # offline, or the cloud lacks the Sumehr state: nothing the request could fix
            abort(503, str(exc))
        raise


@bp.route("")
def index():
    show_all = request.args.get("all") == "1"
    problem = None
    try:
        rows = patients(failed_only=not show_all)
    except ServiceUnavailable as exc:  # not set up: said on the page, which stays usable
        rows, problem = [], exc.description
    return render_template("sumehr/index.html", rows=rows, show_all=show_all, problem=problem,
                           available=publisher() is not None)


@bp.route("/<patient>/retry", methods=["POST"])
def retry_form(patient: str):
    count = retry(patient)
    if count:
        flash(f"Patient {patient}: a new try is asked for now; the Sumehr is published as soon as the HUB "
              "answers.", "success")
    else:
        flash(f"Patient {patient}: nothing failed to retry; the publisher sends the latest Sumehr at its next pass.",
              "info")
    return redirect(url_for("sumehr.index", all=request.args.get("all")))
