"""The Sumehr HUB page: the patients whose Sumehr is not on the HUB, found by name or INSS, and Retry now."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from werkzeug.exceptions import ServiceUnavailable

from reconciler.errors import CcsyncError, Unusable

from .db import get_db, settings
from .present import sentence

bp = Blueprint("sumehr", __name__, url_prefix="/sumehr")

NOT_AVAILABLE = "Sumehr publication is not part of this version of ccsync"
PAGE_SIZE = 50
SHOW = ("attention", "waiting", "not_up_to_date", "all")
SORTS = ("state", "patient", "name", "since")


# every reason the publisher can store (the words of reconciler/sumehr/hub.py, kmehr.py, xmlsafe.py and state.py;
# tests/web/test_views.py finds them in those modules and holds each to this table), in the reader's language. What
# a pattern names (a HUB's own words, a host, a number) is kept as it is; anything else is shown as written.
_HEADER, _SUMEHR = "the document's header", "the Sumehr"
REASONS = [
    (re.compile(r"HUB answered HTTP (?P<status>\d+)"), _l("The HUB answered with an error (HTTP %(status)s).")),
    (re.compile(r"HUB timeout after (?P<seconds>[\d.]+)s"), _l("The HUB did not answer within %(seconds)s s.")),
    (re.compile(r"HUB timeout: no complete answer within (?P<seconds>[\d.]+)s"),
     _l("The HUB did not answer within %(seconds)s s.")),
    (re.compile(r"HUB unreachable \((?P<host>[^)]*)\): no connection within (?P<seconds>[\d.]+)s"),
     _l("The HUB (%(host)s) cannot be reached: no connection within %(seconds)s s.")),
    (re.compile(r"HUB unreachable \((?P<host>[^)]*)\): TLS error: (?P<detail>.*)"),
     _l("The HUB (%(host)s) cannot be reached: its certificate or encryption was refused (%(detail)s).")),
    (re.compile(r"HUB unreachable \((?P<host>[^)]*)\): (?P<detail>.*)"),
     _l("The HUB (%(host)s) cannot be reached (%(detail)s).")),
    (re.compile(r"HUB unreachable: earlier calls past their deadline still hang \(in the auth hook or the network\); "
                r"not tried again until one ends"),
     _l("The HUB cannot be reached: earlier calls still hang (in the sign-in hook or the network). No new try "
        "until one of them ends.")),
    (re.compile(r"HUB request failed \((?P<host>[^)]*)\): (?P<detail>.*)"),
     _l("The request to the HUB (%(host)s) failed (%(detail)s).")),
    (re.compile(r"HUB auth hook failed: (?P<detail>.*)"),
     _l("Signing in to the HUB failed (the authentication hook: %(detail)s).")),
    (re.compile(r"HUB answer longer than (?P<bytes>\d+) bytes: not read"),
     _l("The HUB's answer is longer than %(bytes)s bytes: it was not read.")),
    (re.compile(r"HUB answered a SOAP fault: (?P<detail>.*)"), _l("The HUB refused the Sumehr: %(detail)s")),
    (re.compile(r"HUB answer is not a PutTransactionResponse"),
     _l("The HUB's answer is not an answer to a Sumehr sent: it is not taken as an acknowledgement.")),
    (re.compile(r"HUB answer is for another request: not taken as an acknowledgement"),
     _l("The HUB's answer is about another request: it is not taken as an acknowledgement.")),
    (re.compile(r"HUB did not accept the Sumehr and gave no error"),
     _l("The HUB did not accept the Sumehr and gave no reason.")),
    (re.compile(r"HUB did not accept the Sumehr: (?P<detail>.*)"),
     _l("The HUB did not accept the Sumehr: %(detail)s")),
    (re.compile(r"Sumehr not sent: its root element is not a KMEHR kmehrmessage"),
     _l("The Sumehr is not sent: it is not a KMEHR message.")),
    (re.compile(r"Sumehr not sent: (?P<detail>.*)"), _l("The Sumehr is not sent (%(detail)s).")),
    (re.compile(r"offline: the cloud cannot be reached; published once it can"),
     _l("Offline: the cloud cannot be reached; the Sumehr is published once it can.")),
    (re.compile(r"the INSS in this patient's record is in another patient's record too: correct or merge the records"),
     _l("The INSS in this patient's record is in another patient's record too: correct or merge the records.")),
    (re.compile(r"no author NIHII \(11 digits\) in the Sumehr: set \[hub\] author_nihii in ccsync.toml"),
     _l("The Sumehr names no author NIHII (11 digits): an administrator sets [hub] author_nihii in ccsync.toml.")),
    (re.compile(r"the document is larger than a Sumehr may be \(more than (?P<bytes>\d+) bytes: "
                r"\[sumehr\] max_document_bytes\)"),
     _l("The document is larger than a Sumehr may be (more than %(bytes)s bytes: [sumehr] max_document_bytes).")),
    (re.compile(r"the document is not readable XML \(it is empty\)"), _l("The document is empty.")),
    (re.compile(r"the document is not readable XML \(damaged or cut off at line (?P<line>\d+)\)"),
     _l("The document is not readable XML (damaged or cut off at line %(line)s).")),
    (re.compile(r"the document is not readable XML \(damaged or cut off\)"),
     _l("The document is not readable XML (damaged or cut off).")),
    (re.compile(r"the document is not readable XML \(it declares a DOCTYPE, which KMEHR never has\)"),
     _l("The document is not accepted: it declares a DOCTYPE, which KMEHR never has.")),
    (re.compile(r"the document is not readable XML \((?P<detail>.*)\)"),
     _l("The document is not readable XML (%(detail)s).")),
    (re.compile(r"the document is not a KMEHR message \(its root element is not kmehrmessage\)"),
     _l("The document is not a KMEHR message.")),
    (re.compile(r"the document has no folder"), _l("The document has no folder.")),
    (re.compile(r"the document has (?P<count>\d+) folders: a Sumehr is about one patient, in one folder"),
     _l("The document has %(count)s folders: a Sumehr is about one patient, in one folder.")),
    (re.compile(r"the document has no header"), _l("The document has no header.")),
    (re.compile(f"{_HEADER} has no date"), _l("The document's header has no date.")),
    (re.compile(f"{_HEADER} has no time"), _l("The document's header has no time.")),
    (re.compile(f"{_HEADER} has a date that is not a valid date"), _l("The document's header has an invalid date.")),
    (re.compile(f"{_HEADER} has a time that is not a valid time"), _l("The document's header has an invalid time.")),
    (re.compile(f"{_SUMEHR} has no date"), _l("The Sumehr has no date.")),
    (re.compile(f"{_SUMEHR} has no time"), _l("The Sumehr has no time.")),
    (re.compile(f"{_SUMEHR} has a date that is not a valid date"), _l("The Sumehr has an invalid date.")),
    (re.compile(f"{_SUMEHR} has a time that is not a valid time"), _l("The Sumehr has an invalid time.")),
    (re.compile(r"the document names no patient"), _l("The document names no patient.")),
    (re.compile(r"the document names (?P<count>\d+) patients: a Sumehr is about one patient"),
     _l("The document names %(count)s patients: a Sumehr is about one patient.")),
    (re.compile(r"the document's patient has no INSS"), _l("The document's patient has no INSS.")),
    (re.compile(r"the document's patient has an INSS with markup inside it"),
     _l("The document's patient has an INSS with markup inside it.")),
    (re.compile(r"the document's patient has an empty INSS"), _l("The document's patient has an empty INSS.")),
    (re.compile(r"the document's patient has an INSS that is not 11 digits"),
     _l("The document's patient has an INSS that is not 11 digits.")),
    (re.compile(r"the document's patient has (?P<count>\d+) different INSS"),
     _l("The document's patient has %(count)s different INSS.")),
    (re.compile(r"the document is for another patient \(its INSS is not the one in this patient's record\)"),
     _l("The document is about another patient (its INSS is not the one in this patient's record): it is not sent.")),
    (re.compile(r"this patient's record has no valid INSS \(11 digits\).*"),
     _l("This patient's record has no valid INSS (11 digits): fill it in, so that the document can be checked "
        "and sent.")),
    (re.compile(r"the document has no Sumehr transaction"), _l("The document has no Sumehr transaction.")),
    (re.compile(r"the document has (?P<count>\d+) Sumehr transactions: one is expected"),
     _l("The document has %(count)s Sumehr transactions: one is expected.")),
    (re.compile(r"the document has other transactions besides the Sumehr: only the Sumehr is sent"),
     _l("The document has other transactions besides the Sumehr: only the Sumehr is sent.")),
    (re.compile(r"the Sumehr has no author"), _l("The Sumehr has no author.")),
    (re.compile(r"the Sumehr is not marked complete \((?P<flag>\w+) is not true\)"),
     _l("The Sumehr is not marked complete (%(flag)s is not true).")),
    (re.compile(r"the Sumehr is not marked validated \((?P<flag>\w+) is not true\)"),
     _l("The Sumehr is not marked validated (%(flag)s is not true).")),
]


def _translated(text: str) -> str | None:
    for pattern, words in REASONS:
        found = pattern.fullmatch(text)
        if found:
            return str(words) % found.groupdict()
    return None


@bp.app_template_filter("reason_words")
def reason_words(text: str | None) -> str | None:
    """A publisher's reason in the reader's language (the values it names kept as they are); the problems of an
    invalid document, joined by "; ", each in turn; a reason no pattern knows as the publisher wrote it."""
    if not text:
        return text
    whole = _translated(text.strip())
    if whole is not None:
        return whole
    parts = text.strip().split("; ")
    words = [_translated(part) for part in parts]
    if len(parts) > 1 and any(w is not None for w in words):
        return " ".join(w if w is not None else part for w, part in zip(words, parts))
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
    """A configuration the publisher cannot work with (not this PC's database that cannot be used: that one is
    the error pages', web/errors)."""
    return not isinstance(exc, Unusable)


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
