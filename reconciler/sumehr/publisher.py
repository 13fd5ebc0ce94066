"""The Sumehr publisher: keep the latest Sumehr of every consenting patient on the regional HUB, list the rest.

Nothing happens until ccsync.toml names the HUB ([hub] endpoint): there is no default HUB.

Online, one pass (`publish`) reads the Sumehr documents and privacy flags on the cloud (the authoritative copy
once pushed), brings ccsync.sumehr_state up to date there, and for each patient whose HUB version is behind:
claims the patient on the cloud (committed before anything is sent, so two PCs never send the same version),
checks that the latest document is a publishable Sumehr of that very patient (the INSS of the patient's own
record), sends it with hubservices v3 PutTransaction, records the outcome and ends the claim. Failures are
retried with capped exponential backoff. Every write on the cloud goes through the ccsync.sumehr_* functions,
which take the PC from the connected role; the nodes receive ccsync.sumehr_state by replication like any
tracked table.

Offline nothing is attempted. `listing` reads the node's own database, so it works offline: a patient whose
latest local Sumehr (perhaps written offline) is newer than the HUB's version is listed as waiting, computed
when read rather than written (a node writing the replicated rows would make conflicts).

Logging: counts only above DEBUG; patient keys at DEBUG; never a document.
"""

from __future__ import annotations

import logging
import numbers
import threading
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import psycopg
from lxml import etree
from psycopg.rows import class_row

from .. import db as _db, mode
from . import xmlsafe as _xml, hub, kmehr
from ..db import CLOUD_LINK, open_cloud, open_node
from .state import ATTENTION, OFFLINE_REASON, STATES  # noqa: F401  (OFFLINE_REASON: part of the listing API)
from . import state as _state
from .tables import AppTables, Document, Due, PatientRow, resolve, state_installed
from ..config import Settings
from ..errors import CcsyncError, Unreachable, one_line

log = logging.getLogger("ccsync.sumehr")

LIST_KEYS = ("patient", "name", "latest_version", "hub_version", "state", "reason", "since", "attempts",
             "last_attempt", "next_attempt", "hub_transaction_id")
FILTERS = ("attention", "waiting", "not_up_to_date", "up_to_date", "no_consent", "all")
SORTS = ("patient", "name", "state", "since")
NOT_CONFIGURED = "Sumehr publication not configured"
OFFLINE = "offline"
_PROBE_TIMEOUT = 2
_TRANSPORT = ("HUB unreachable", "HUB timeout")  # hub.py's reasons when the HUB could not be reached at all
_MAX_TRANSPORT_FAILURES = 3  # in a row, within one pass: the HUB is down, leave the rest for the next pass
_MAX_CLAIM = 600.0  # seconds: ccsync.sumehr_claim refuses longer claims
# The cloud notices a publisher that vanished (power cut, cable) within seconds, which ends its claim. The
# origin names this PC for a trusted session (the schema owner); a PC's role is known by its role alone.
_SESSION = ("select set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '2', false), "
            "set_config('tcp_keepalives_count', '2', false), set_config('tcp_user_timeout', '8000', false), "
            "set_config('ccsync.origin', %s, false)")


# -- configuration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SumehrConfig:
    """ccsync.toml [sumehr]: where the application keeps its Sumehrs, the privacy flag and the patient's INSS;
    the publisher's pace.

    Table names are SQL names (`public.sumehr_documents`, `app."Sumehr Docs"`), columns plain names.
    name_columns: the patient's name, shown in lists and searched (None: first_name + last_name, or name, when
    the patients table has them). claim_seconds defaults to the HUB call's deadline plus 30 s. A document larger
    than max_document_bytes is not read (a Sumehr is a few hundred kB): it is recorded invalid.
    """

    documents_table: str = "public.sumehr_documents"
    patient_column: str = "patient_id"
    version_column: str = "version"
    kmehr_column: str = "kmehr"
    created_column: str = "created_at"
    patients_table: str = "public.patients"
    patients_key: str = "id"
    flag_column: str = "hub_consent"
    inss_column: str = "inss"
    name_columns: tuple[str, ...] | None = None
    interval_seconds: float = 5.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    claim_seconds: float | None = None
    max_document_bytes: int = 10 * 1024 * 1024

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure in a row: doubling from the base, capped."""
        return min(self.retry_base_seconds * 2 ** max(attempts - 1, 0), self.retry_max_seconds)


HUB_DEFAULTS = {"endpoint": None, "connect_timeout": 5.0, "read_timeout": 30.0, "deadline": None,
                "max_answer_bytes": 1024 * 1024, "verify": True, "insecure": False, "cert": None, "auth": None,
                "author_nihii": None, "author_name": None}


def sumehr_config(settings: Settings) -> SumehrConfig:
    """[sumehr] of ccsync.toml, checked: unknown keys and wrong types are one clear error."""
    doc = _section(settings, "sumehr")
    known = {f.name: f for f in fields(SumehrConfig)}
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise CcsyncError(f"ccsync.toml [sumehr]: unknown key {unknown[0]!r}; known keys: {', '.join(known)}")
    values = {}
    for name, value in doc.items():
        if name.endswith("_seconds"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise CcsyncError(f"ccsync.toml [sumehr] {name} must be a positive number of seconds")
            value = float(value)
        elif name == "name_columns":
            if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
                raise CcsyncError('ccsync.toml [sumehr] name_columns must be a list of column names, '
                                  'e.g. ["first_name", "last_name"] (or [] for none)')
            value = tuple(value)
        elif name == "max_document_bytes":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise CcsyncError("ccsync.toml [sumehr] max_document_bytes must be a whole number of bytes, "
                                  "at least 1024")
        elif not isinstance(value, str) or not value:
            raise CcsyncError(f"ccsync.toml [sumehr] {name} must be a non-empty string")
        values[name] = value
    cfg = SumehrConfig(**values)
    if cfg.claim_seconds is None:
        try:
            deadline = _hub_config(settings).hub.deadline if configured(settings) else hub.MAX_DEADLINE
        except CcsyncError:
            deadline = hub.MAX_DEADLINE  # hub_config() reports the bad [hub] section
        cfg = SumehrConfig(**{**values, "claim_seconds": deadline + 30.0})
    if cfg.claim_seconds > _MAX_CLAIM:
        raise CcsyncError(f"ccsync.toml [sumehr] claim_seconds must be at most {_MAX_CLAIM:g}")
    return cfg


@dataclass(frozen=True)
class Publisher:
    """[hub] of ccsync.toml: how to reach the HUB, and who signs the requests."""

    hub: hub.HubConfig
    author_nihii: str | None  # None: the author of each Sumehr
    author_name: str | None


def configured(settings: Settings) -> bool:
    """Whether ccsync.toml names a HUB ([hub] endpoint): without one, no Sumehr is ever sent anywhere."""
    return bool(_section(settings, "hub").get("endpoint"))


def hub_config(settings: Settings) -> Publisher:
    """[hub] of ccsync.toml, checked; raises "not configured" without an endpoint."""
    if not configured(settings):
        raise CcsyncError(f"{NOT_CONFIGURED}: set [hub] endpoint in ccsync.toml to publish Sumehrs "
                          "(see the README's [hub] section)")
    return _hub_config(settings)


def _hub_config(settings: Settings) -> Publisher:
    doc = _section(settings, "hub")
    unknown = sorted(set(doc) - set(HUB_DEFAULTS))
    if unknown:
        raise CcsyncError(f"ccsync.toml [hub]: unknown key {unknown[0]!r}; known keys: {', '.join(HUB_DEFAULTS)}")
    doc = {**HUB_DEFAULTS, **doc}
    for name in ("connect_timeout", "read_timeout", "deadline"):
        if doc[name] is not None and (isinstance(doc[name], bool) or not isinstance(doc[name], (int, float))):
            raise CcsyncError(f"ccsync.toml [hub] {name} must be a number of seconds")
    if not isinstance(doc["verify"], (bool, str)):
        raise CcsyncError("ccsync.toml [hub] verify must be true, false or the path of a CA bundle")
    if not isinstance(doc["insecure"], bool):
        raise CcsyncError("ccsync.toml [hub] insecure must be true or false")
    cert = doc["cert"]
    if isinstance(cert, list) and len(cert) == 2 and all(isinstance(c, str) for c in cert):
        cert = (cert[0], cert[1])
    elif cert is not None and not isinstance(cert, str):
        raise CcsyncError('ccsync.toml [hub] cert must be a PEM path or ["cert.pem", "key.pem"]')
    for name in ("endpoint", "auth", "author_nihii", "author_name"):
        if doc[name] is not None and not isinstance(doc[name], str):
            raise CcsyncError(f"ccsync.toml [hub] {name} must be a string")
    auth = hub.load_auth_hook(doc["auth"]) if doc["auth"] else None
    config = hub.HubConfig(endpoint=doc["endpoint"], connect_timeout=float(doc["connect_timeout"]),
                           read_timeout=float(doc["read_timeout"]), verify=doc["verify"], cert=cert, auth=auth,
                           insecure=doc["insecure"],
                           deadline=None if doc["deadline"] is None else float(doc["deadline"]),
                           max_answer_bytes=doc["max_answer_bytes"])
    return Publisher(config, doc["author_nihii"], doc["author_name"])


_warned: set[str] = set()


def warn_if_insecure(publisher: Publisher) -> None:
    """Once per process and endpoint: a HUB whose certificate is not checked is worth a line in the log."""
    if publisher.hub.verify is False and publisher.hub.endpoint not in _warned:
        _warned.add(publisher.hub.endpoint)
        log.warning("Sumehr publisher: the HUB's certificate is NOT checked ([hub] verify = false, insecure = true): "
                    "any server could receive the patients' Sumehrs; for tests only")


def _section(settings: Settings, name: str) -> dict:
    doc = settings.extra.get(name, {})
    if not isinstance(doc, dict):
        raise CcsyncError(f"ccsync.toml: [{name}] must be a table of keys")
    return doc


# -- one publication pass -------------------------------------------------------------------------------
def publish(settings: Settings, *, node_name: str | None = None, now: datetime | None = None) -> dict:
    """One pass of the publisher. Offline (the cloud unreachable) nothing is attempted; without [hub] endpoint
    it refuses with one line (nothing is published anywhere until a HUB is configured).

    `now` replaces the cloud's clock for the retry schedule only (when a failed patient is due, and its next
    attempt), so a test can step past a backoff; claims always use the cloud's clock.

    JSON keys: mode (online or offline), node, patients (consenting patients with a Sumehr), published, failed
    (the HUB refused or could not be reached), invalid (not sent: not a publishable Sumehr of that patient),
    busy (claimed by another publisher), waiting (not yet due: backoff, or an invalid document waiting for a
    new version), not_up_to_date (after the pass), seconds; offline also reason.
    """
    started = time.monotonic()
    publisher = hub_config(settings)
    cfg = sumehr_config(settings)
    warn_if_insecure(publisher)
    if node_name is None:
        node, node_name = open_node(settings.need_local())
        node.close()
    if now is not None and now.tzinfo is None:
        now = now.astimezone()  # a naive time is the local time, as datetime.timestamp() takes it
    try:
        cloud = _cloud(settings)
    except Unreachable as exc:
        listed = _count_offline(settings) if settings.local else None
        log.info("Sumehr publisher: offline, nothing attempted")
        return {"mode": OFFLINE, "node": node_name, "patients": None, "published": 0, "failed": 0, "invalid": 0,
                "busy": 0, "waiting": 0, "not_up_to_date": listed, "reason": str(exc),
                "seconds": round(time.monotonic() - started, 3)}
    with cloud:
        cloud.execute(_SESSION, (node_name,))
        result = _publish_online(cloud, cfg, publisher, node_name, now)
    result["seconds"] = round(time.monotonic() - started, 3)
    if result["published"] or result["failed"] or result["invalid"]:
        log.info("Sumehr publisher: %s published, %s failed, %s invalid, %s not up to date", result["published"],
                 result["failed"], result["invalid"], result["not_up_to_date"])
    return result


def _cloud(settings: Settings) -> psycopg.Connection:
    return open_cloud(settings.need_cloud(), **CLOUD_LINK)


def _publish_online(cloud: psycopg.Connection, cfg: SumehrConfig, publisher: Publisher, node: str,
                    clock: datetime | None) -> dict:
    if not state_installed(cloud):
        raise CcsyncError("the cloud's ccsync schema has no Sumehr state: run `ccsync install` to upgrade it")
    app = resolve(cloud, cfg, "cloud database")
    _release_leftovers(cloud)
    rows = _rows(cloud, app, consenting_only=True)
    _refresh(cloud, rows)
    counts = {"published": 0, "failed": 0, "transport": 0, "invalid": 0, "busy": 0, "waiting": 0}
    transport_failures = 0
    behind = cloud.cursor(row_factory=class_row(Due)).execute(app.to_publish(), {"clock": clock}).fetchall()
    for patient in behind:
        if not patient.due or transport_failures >= _MAX_TRANSPORT_FAILURES:
            counts["waiting"] += 1
            continue
        outcome = _publish_one(cloud, app, cfg, publisher, patient, clock)
        counts[outcome] += 1
        transport_failures = transport_failures + 1 if outcome == "transport" else 0
    counts["failed"] += counts.pop("transport", 0)
    rows = _rows(cloud, app, consenting_only=True)
    behind = sum(1 for r in rows if _state.shown(r, offline=False)["state"] != "up_to_date")
    return {"mode": "online", "node": node, "patients": len(rows), **counts, "not_up_to_date": behind}


def _rows(conn: psycopg.Connection, app: AppTables, *, consenting_only: bool) -> list[PatientRow]:
    cursor = conn.cursor(row_factory=class_row(PatientRow))
    return cursor.execute(app.with_documents(consenting_only=consenting_only)).fetchall()


def _refresh(cloud: psycopg.Connection, rows: list[PatientRow]) -> None:
    arrays = ([r.patient for r in rows], [r.latest for r in rows], [r.first_newer for r in rows])
    for attempt in (1, 2):
        try:
            changed = cloud.execute("select ccsync.sumehr_refresh(%s::text[], %s::bigint[], %s::timestamptz[])",
                                    arrays).fetchone()[0]
        except psycopg.errors.DeadlockDetected:  # two publishers refreshing at once: the loser tries again
            if attempt == 2:
                raise
            continue
        if changed:
            log.debug("Sumehr publisher: %s patient(s) with a new latest version or a new flag", changed)
        return


@dataclass(frozen=True)
class _Claim:
    claim: uuid.UUID | None
    hub_version: int | None
    busy: bool


def _publish_one(cloud, app: AppTables, cfg: SumehrConfig, publisher: Publisher, due: Due,
                 clock: datetime | None) -> str:
    """Claim, check, send, record. Returns published/failed/transport/invalid, busy (another publisher has it)
    or waiting (nothing to send after all)."""
    patient = due.patient
    claimed = cloud.cursor(row_factory=class_row(_Claim)).execute(
        "select claim, hub_version, busy from ccsync.sumehr_claim(%s, %s, %s)",
        (patient, cfg.claim_seconds, clock)).fetchone()
    if claimed.claim is None:
        return "busy" if claimed.busy else "waiting"
    claim = claimed.claim
    log.debug("Sumehr publisher: claimed patient %s", patient)

    def record(outcome: str, version: int | None, reason: str | None = None, transaction_id: str | None = None):
        recorded = cloud.execute(
            "select ccsync.sumehr_record(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (patient, claim, version, outcome, reason and hub.bounded_reason(reason), transaction_id,
             cfg.retry_base_seconds, cfg.retry_max_seconds, clock)).fetchone()[0]
        log.debug("Sumehr publisher: patient %s %s%s", patient, outcome, "" if recorded else
                  " (not recorded: the claim ended meanwhile)")

    try:
        doc = cloud.cursor(row_factory=class_row(Document)).execute(
            app.latest_document(), {"key": due.key, "max": cfg.max_document_bytes}).fetchone()
        if doc is None:  # the flag went off, or the documents went away, since the list was read
            _release(cloud, patient, claim)
            return "waiting"
        verdict = _state.instead_of_sending(doc, claimed.hub_version, cfg.max_document_bytes)
        if verdict is not None:
            record(verdict[0], doc.version, verdict[1])
            return "waiting" if verdict[0] == "nothing" else verdict[0]
        document, nihii, name = _prepared(doc.document, doc.version)
        nihii = publisher.author_nihii or nihii
        problem = _state.author_problem(nihii)
        if problem:
            record("failed", doc.version, problem)
            return "failed"
        result = hub.put_transaction(publisher.hub, document, request_id=f"{nihii}.{uuid.uuid4().hex}",
                                     author_nihii=nihii, author_name=publisher.author_name or name or "ccsync")
        if result.ok:
            record("published", doc.version, transaction_id=result.transaction_id)
            return "published"
        record("failed", doc.version, result.reason)
        return "transport" if result.reason.startswith(_TRANSPORT) else "failed"
    except BaseException:
        _release(cloud, patient, claim)
        raise


def _prepared(document: bytes | str, version: int) -> tuple[bytes | str, str | None, str | None]:
    """The document carrying its version as ccsync's LOCAL transaction id (how the HUB tells older from newer),
    with the author's NIHII and name. Unchanged bytes when it already carries the right version."""
    root = _xml.parse(document)
    ns = {"k": kmehr.KMEHR_NS}
    transaction = next(t for t in root.iterfind("k:folder/k:transaction", ns) if kmehr.is_sumehr(t))
    nihii = _xml.text_of(transaction.find("k:author/k:hcparty/k:id[@S='ID-HCPARTY']", ns))
    name = _xml.text_of(transaction.find("k:author/k:hcparty/k:name", ns))
    stamp = next((i for i in transaction.iterfind("k:id", ns)
                  if i.get("S") == "LOCAL" and i.get("SL") == kmehr.VERSION_LABEL), None)
    if stamp is not None and _xml.text_of(stamp) == str(version):
        return document, nihii, name
    if stamp is None:
        ids = transaction.findall("k:id", ns)
        stamp = etree.Element(f"{{{kmehr.KMEHR_NS}}}id", {"S": "LOCAL", "SV": "1.0", "SL": kmehr.VERSION_LABEL})
        transaction.insert(transaction.index(ids[-1]) + 1 if ids else 0, stamp)
    stamp.text = str(version)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), nihii, name


# Claims this process could not end (the cloud connection broke mid-publication): ended at the next pass, so
# the patient is not held back until the claim's time runs out.
_leftovers: dict[str, uuid.UUID] = {}
_leftovers_lock = threading.Lock()


def _release(cloud, patient: str, claim: uuid.UUID) -> None:
    try:
        if not cloud.closed and cloud.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            cloud.execute("select ccsync.sumehr_release(%s, %s)", (patient, claim))
            return
    except psycopg.Error:
        pass
    with _leftovers_lock:
        _leftovers[patient] = claim


def _release_leftovers(cloud) -> None:
    with _leftovers_lock:
        pending = dict(_leftovers)
        _leftovers.clear()
    for patient, claim in pending.items():
        cloud.execute("select ccsync.sumehr_release(%s, %s)", (patient, claim))


# -- reading the state (the node's database: works offline) ---------------------------------------------
@dataclass(frozen=True)
class Listing:
    """One page of the Sumehr list: the rows, how many match in all, and how many patients are in each state."""

    rows: list[dict]
    total: int
    counts: dict[str, int]


def listing(conn: psycopg.Connection, settings: Settings, *, show: str = "all", search: str | None = None, sort: str = "patient",
            limit: int | None = None, offset: int = 0) -> Listing:
    """The patients with a Sumehr, from this PC's database (`conn`: works offline), filtered, searched, sorted,
    paged.

    show: attention (invalid or failing: someone must look), waiting, not_up_to_date (the three), up_to_date,
    no_consent, or all. search: words that must each appear in the patient's key or name, or digits of the
    INSS (any notation). sort: patient (by key, numerically when the key is a number), name, state (the ones
    to look at first), since (the longest waiting first).
    """
    if not configured(settings):
        raise CcsyncError(f"{NOT_CONFIGURED}: set [hub] endpoint in ccsync.toml (see the README's [hub] section)")
    if show not in FILTERS:
        raise CcsyncError(f"unknown filter {show!r}: use one of {', '.join(FILTERS)}")
    if sort not in SORTS:
        raise CcsyncError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    if limit is not None and limit < 1 or offset < 0:
        raise CcsyncError("limit must be at least 1 and offset at least 0")
    cfg = sumehr_config(settings)
    offline = _offline(settings, conn)
    rows = _rows(conn, resolve(conn, cfg, "local database"), consenting_only=False)
    items = [(r, _state.shown(r, offline=offline)) for r in rows]
    counts = {state: 0 for state in STATES}
    for _, item in items:
        counts[item["state"]] += 1
    items = [(r, item) for r, item in items if _shown(item["state"], show) and _matches(r, search)]
    items.sort(key=_SORT_KEYS[sort])
    page = items[offset:offset + limit if limit else None]
    out = []
    for _, item in page:
        for k in ("since", "last_attempt", "next_attempt"):
            item[k] = item[k].isoformat() if item[k] else None
        out.append(item)
    return Listing(out, len(items), counts)


def list_patients(conn: psycopg.Connection, settings: Settings, *, failed_only: bool = False,
                  **options) -> list[dict]:
    """The rows of `listing` (every patient with a Sumehr; failed_only: those whose HUB version is behind).

    JSON keys of each item: patient, name (null when the configured tables have none), latest_version,
    hub_version, state (up_to_date, waiting, failing, invalid, no_consent), reason (in words; null when up to
    date), since (when it entered that state; ISO 8601), attempts (failed tries in a row), last_attempt,
    next_attempt (null: as soon as a publisher runs; for an invalid document, when a new version comes or on
    retry), hub_transaction_id.
    """
    if failed_only:
        options["show"] = "not_up_to_date"
    return listing(conn, settings, **options).rows


def _shown(state: str, show: str) -> bool:
    if show == "all":
        return True
    if show == "attention":
        return state in ATTENTION
    if show == "not_up_to_date":
        return state in ATTENTION or state == "waiting"
    return state == show


def _matches(r: PatientRow, search: str | None) -> bool:
    if not search or not search.strip():
        return True
    digits = kmehr.normalize_inss(search)
    if digits is not None or search.strip().replace(".", "").replace("-", "").isdigit():
        wanted = "".join(ch for ch in search if ch.isdigit())
        record = "".join(ch for ch in (r.inss or "") if ch.isdigit())
        if wanted and wanted in record:
            return True
    haystack = f"{r.patient} {r.name or ''}".casefold()
    return all(word in haystack for word in search.casefold().split())


def _natural(value) -> tuple:
    """Numbers by value (9 before 10, Decimal keys too), then anything else by its text."""
    if isinstance(value, numbers.Number) and not isinstance(value, (bool, complex)):
        return (0, value, "")
    return (1, 0, str(value))


_SORT_KEYS = {
    "patient": lambda pair: _natural(pair[0].key),
    "name": lambda pair: ((pair[0].name or "").casefold(), _natural(pair[0].key)),
    "state": lambda pair: (STATES.index(pair[1]["state"]), _natural(pair[0].key)),
    "since": lambda pair: (pair[1]["since"] is None, pair[1]["since"].timestamp() if pair[1]["since"] else 0,
                           _natural(pair[0].key)),
}


def summary(conn: psycopg.Connection, settings: Settings) -> dict:
    """The Sumehr figures of `ccsync status`, on an open connection to the node.

    Keys: configured (a HUB is named in ccsync.toml), attention (invalid or failing: someone must look; null
    when not configured), waiting (not yet on the HUB, offline or not yet tried; null when not configured).
    Without the configured tables in this database it counts the state rows.
    """
    if not configured(settings):
        return {"configured": False, "attention": None, "waiting": None}
    if not state_installed(conn):
        return {"configured": True, "attention": 0, "waiting": 0}
    try:
        with conn.transaction():  # a savepoint: a failed lookup leaves the caller's transaction usable
            rows = _rows(conn, resolve(conn, sumehr_config(settings), "local database"), consenting_only=True)
    except (CcsyncError, psycopg.Error):
        attention, waiting = conn.execute(
            "select count(*) filter (where state in ('failed', 'invalid')), count(*) filter (where state = 'pending') "
            "from ccsync.sumehr_state").fetchone()
        return {"configured": True, "attention": attention, "waiting": waiting}
    states = [_state.shown(r, offline=False)["state"] for r in rows]
    return {"configured": True, "attention": sum(s in ATTENTION for s in states),
            "waiting": sum(s == "waiting" for s in states)}


def _offline(settings: Settings, node: psycopg.Connection) -> bool:
    """The node is offline, as the one mode rule decides."""
    return mode.current(node, settings.cloud, timeout=_PROBE_TIMEOUT).mode == OFFLINE


def _count_offline(settings: Settings) -> int | None:
    try:
        with _db.connect(settings.need_local(), role="local database", autocommit=True) as conn:
            counts = summary(conn, settings)
    except (CcsyncError, psycopg.Error):
        return None
    return None if counts["attention"] is None else counts["attention"] + counts["waiting"]


# -- retry ---------------------------------------------------------------------------------------------
def retry(conn: psycopg.Connection, settings: Settings, patient: str | None = None) -> int:
    """Make the next pass try again now (every patient not up to date, or one): returns how many were reset.

    Written on the cloud, the only place the publisher reads it; offline there is nothing to retry yet (the
    publisher starts again by itself once the cloud answers): the cloud's `Unreachable` (`.where == "cloud"`)
    goes to the caller as `reconciler.db` raised it, for each door to word (the panel's cloud page, the CLI's line).
    """
    hub_config(settings)  # not configured: one line saying so
    with _cloud(settings) as cloud:
        if not state_installed(cloud):
            raise CcsyncError("the cloud's ccsync schema has no Sumehr state: run `ccsync install` to upgrade it")
        cloud.execute(_SESSION, (_db.node_name(conn),))
        if patient is not None:
            known = cloud.execute("select exists (select 1 from ccsync.sumehr_state where patient = %s)",
                                  (patient,)).fetchone()[0]
            if not known:
                app = resolve(cloud, sumehr_config(settings), "cloud database")
                if not cloud.execute(app.is_patient(), (patient,)).fetchone()[0]:
                    raise CcsyncError(f"unknown patient {patient!r}: no patient with that key keeps a Sumehr on "
                                      "the HUB (see `ccsync sumehr list`)")
        count = cloud.execute("select ccsync.sumehr_retry(%s)", (patient,)).fetchone()[0]
    log.info("Sumehr publisher: %s patient(s) to retry now", count)
    return count


# -- the service task ----------------------------------------------------------------------------------
class PublisherTask:
    """A `ccsync run` task: a publication pass at most every interval_seconds while online, and at once when
    the service comes online. The pass runs in a thread of its own, so a slow HUB never holds up the sync.
    Without [hub] endpoint it says so once and never runs."""

    __name__ = "Sumehr publisher"

    def __init__(self, interval: float | None = None):
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._last = float("-inf")
        self._was_online = False
        self._last_error: str | None = None
        self._checked = False
        self._off = False

    def __call__(self, service) -> None:
        try:
            self._tick(service)
        except Exception as exc:  # noqa: BLE001 — a task must never stop the sync service
            log.warning("Sumehr publisher not started: %s", _one_line(exc))

    def _start(self, settings: Settings) -> None:
        """Once per service: off without a HUB; the insecure warning; the pace."""
        self._checked = True
        if not configured(settings):
            self._off = True
            log.info("%s ([hub] endpoint in ccsync.toml): no Sumehr is sent to any HUB", NOT_CONFIGURED)
            return
        try:
            warn_if_insecure(hub_config(settings))
            if self.interval is None:
                self.interval = sumehr_config(settings).interval_seconds
        except CcsyncError:
            pass  # each pass reports the configuration error
        if self.interval is None:
            self.interval = SumehrConfig.interval_seconds

    def _tick(self, service) -> None:
        if not self._checked:
            self._start(service.settings)
        if self._off:
            return
        sides = service.sides
        if sides is None or sides.cloud is None or sides.cloud.closed:
            self._was_online = False  # offline: nothing is attempted
            return
        if self._thread is not None and self._thread.is_alive():
            return
        now = time.monotonic()
        if self._was_online and now - self._last < self.interval:
            return
        self._was_online, self._last = True, now
        self._thread = threading.Thread(target=self._pass, args=(service.settings, service.name),
                                        name="sumehr-publisher", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _pass(self, settings: Settings, node: str) -> None:
        try:
            publish(settings, node_name=node)
        except Exception as exc:  # noqa: BLE001 — one line in the log, the next pass tries again
            message = _one_line(exc)
            # the same failure every few seconds (say, no Sumehr table in this practice) is logged once
            (log.debug if message == self._last_error else log.warning)("Sumehr publisher failed: %s", message)
            self._last_error = message
        else:
            if self._last_error is not None:
                log.info("Sumehr publisher works again")
            self._last_error = None


def service_task(interval: float | None = None) -> PublisherTask:
    """The publisher as a task for `ccsync run` (service.Service(tasks=[...]))."""
    return PublisherTask(interval)


def _one_line(exc: BaseException) -> str:
    """An error for the log: a database error's primary message only (its detail may quote a patient's row)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        text = f"{type(exc).__name__}: {exc.diag.message_primary}"
    else:
        text = str(exc) or type(exc).__name__
    return one_line(text)[:300]
