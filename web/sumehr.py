"""The Sumehr HUB page: the patients whose Sumehr is not on the HUB, found by name or INSS, and Retry now."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import psycopg
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from werkzeug.exceptions import ServiceUnavailable

from reconciler.errors import CcsyncError

from .db import get_db, settings
from .present import sentence

bp = Blueprint("sumehr", __name__, url_prefix="/sumehr")

NOT_AVAILABLE = "Sumehr publication is not part of this version of ccsync"
PAGE_SIZE = 50
SHOW = ("attention", "waiting", "not_up_to_date", "all")
SORTS = ("state", "patient", "name", "since")


# the publisher's reasons a receptionist meets every day, in her language (the words of reconciler/sumehr/hub.py
# and state.py; tests/web/test_views.py holds them to those modules); any other reason is shown as written
REASONS = [
    (re.compile(r"HUB answered HTTP (?P<status>\d{3})"), _l("The HUB answered with an error (HTTP %(status)s).")),
    (re.compile(r"HUB timeout after (?P<seconds>[\d.]+)s"), _l("The HUB did not answer within %(seconds)s s.")),
    (re.compile(r"HUB timeout: no complete answer within (?P<seconds>[\d.]+)s"),
     _l("The HUB did not answer within %(seconds)s s.")),
    (re.compile(r"HUB unreachable \((?P<host>[^)]*)\): no connection within (?P<seconds>[\d.]+)s"),
     _l("The HUB (%(host)s) cannot be reached: no connection within %(seconds)s s.")),
    (re.compile(r"HUB unreachable \((?P<host>[^)]*)\): TLS error: (?P<detail>.*)"),
     _l("The HUB (%(host)s) cannot be reached: its certificate or encryption was refused (%(detail)s).")),
    (re.compile(r"HUB unreachable \((?P<host>[^)]*)\): (?P<detail>.*)"),
     _l("The HUB (%(host)s) cannot be reached (%(detail)s).")),
    (re.compile(r"HUB answered a SOAP fault: (?P<detail>.*)"), _l("The HUB refused the Sumehr: %(detail)s")),
    (re.compile(r"offline: the cloud cannot be reached; published once it can"),
     _l("Offline: the cloud cannot be reached; the Sumehr is published once it can.")),
    (re.compile(r"the document is for another patient \(its INSS is not the one in this patient's record\)"),
     _l("The document is about another patient (its INSS is not the one in this patient's record): it is not sent.")),
    (re.compile(r"this patient's record has no valid INSS \(11 digits\).*"),
     _l("This patient's record has no valid INSS (11 digits): fill it in, so that the document can be checked "
        "and sent.")),
]


@bp.app_template_filter("reason_words")
def reason_words(text: str | None) -> str | None:
    """A publisher's reason in the reader's language when it is one of REASONS (the values it names kept as
    they are), else as the publisher wrote it."""
    if not text:
        return text
    for pattern, words in REASONS:
        found = pattern.fullmatch(text.strip())
        if found:
            return str(words) % found.groupdict()
    return text


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


def configured() -> bool:
    module = publisher()
    return module is not None and module.configured(settings())


def listing(*, show: str = "all", search: str | None = None, sort: str = "patient", limit: int | None = None,
            offset: int = 0):
    """One page of the publisher's list; 503 with its own words when Sumehr publication is not set up here."""
    module = publisher()
    if module is None:
        abort(503, NOT_AVAILABLE)
    try:
        return module.listing(get_db(), settings(), show=show, search=search, sort=sort, limit=limit,
                              offset=offset)
    except CcsyncError as exc:
        if not module.configured(settings()):
            abort(503, str(exc))
        if _not_set_up(exc):
            raise _unavailable(f"Sumehr publication is not set up on this PC: {exc}", words=str(exc)) from None
        raise


def _unavailable(description: str, *, words: str) -> ServiceUnavailable:
    """A 503 that keeps the publisher's own words apart, for the page to put after its translated lead."""
    error = ServiceUnavailable(description)
    error.words = words
    return error


def patients(failed_only: bool = True) -> list[dict]:
    """The patients not current on the HUB (every patient with a Sumehr, with failed_only=False)."""
    if publisher() is None:
        return []
    return listing(show="not_up_to_date" if failed_only else "all").rows


def retry(patient: str) -> int:
    """Ask the publisher to try this patient again now; 404 for a patient it does not list."""
    return _retry(patient)[0]


def _retry(patient: str) -> tuple[int, dict]:
    """How many tries were asked for, and the patient's row (its name for the page)."""
    module = publisher()
    if module is None:
        abort(503, NOT_AVAILABLE)
    if not 1 <= len(patient) <= 64 or not patient.isprintable():
        abort(400, "a patient is named by 1 to 64 printable characters")
    row = next((p for p in patients(failed_only=False) if p["patient"] == patient and p["state"] != "no_consent"),
               None)
    if row is None:
        abort(404, f"no patient {patient} keeps a Sumehr on the HUB")
    try:
        return module.retry(get_db(), settings(), patient), row
    except CcsyncError as exc:
        if _not_set_up(exc):  # offline, or the cloud lacks the Sumehr state: nothing the request could fix
            abort(503, str(exc))
        raise


def _arg(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    if value not in allowed:
        abort(400, f"{name} must be one of {', '.join(allowed)}")
    return value


def _page_number() -> int:
    value = request.args.get("page", "1")
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        abort(400, "page must be a whole number from 1")
    return int(value)


@bp.route("")
def index():
    show = "all" if request.args.get("all") == "1" else _arg("show", SHOW, "attention")
    sort = _arg("sort", SORTS, "state")
    search = request.args.get("q", "").strip()[:100]
    page = _page_number()
    problem, result = None, None
    if publisher() is None:
        problem = NOT_AVAILABLE
    elif not configured():
        problem = None
    else:
        try:
            result = listing(show=show, search=search or None, sort=sort, limit=PAGE_SIZE,
                             offset=(page - 1) * PAGE_SIZE)
        except ServiceUnavailable as exc:  # not set up: said on the page (in the publisher's words), which stays usable
            problem = getattr(exc, "words", exc.description)
    pages = max(1, -(-result.total // PAGE_SIZE)) if result else 1
    return render_template("sumehr/index.html", result=result, show=show, sort=sort, search=search, page=page,
                           pages=pages, problem=problem, available=publisher() is not None,
                           is_configured=publisher() is not None and configured())


@bp.route("/<patient>/retry", methods=["POST"])
def retry_form(patient: str):
    count, row = _retry(patient)
    who = row.get("name") or patient
    if count:
        flash(sentence(_("%(who)s: a new try is asked for now; the Sumehr is published as soon as the HUB answers."),
                       who=who), "success")
    else:
        flash(sentence(_("%(who)s: nothing failed to retry; the publisher sends the latest Sumehr at its next pass."),
                       who=who), "info")
    back = {k: v for k, v in request.args.items() if k in ("show", "sort", "q", "page")}
    return redirect(url_for("sumehr.index", **back))
