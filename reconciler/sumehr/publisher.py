"""The Sumehr publisher: keep the latest Sumehr of every consenting patient on the regional HUB, list the rest.

Online, one pass (`publish`) reads the Sumehr documents and privacy flags on the cloud (the authoritative copy
once pushed), brings ccsync.sumehr_state up to date there, and for each patient whose HUB version is behind:
claims the patient on the cloud (committed before anything is sent, so two PCs never send the same version),
validates the latest document, sends it with hubservices v3 PutTransaction, records the outcome and releases
the claim. Failures are retried with capped exponential backoff. Every write is made on the cloud; the nodes
receive ccsync.sumehr_state by replication like any tracked table.

Offline nothing is attempted. `list_patients` reads the node's own database, so it works offline: a patient
whose latest local Sumehr (perhaps written offline) is newer than the HUB's version is listed with the reason
`offline`, computed when read rather than written (a node writing the replicated rows would make conflicts).

Logging: counts only above DEBUG; patient keys at DEBUG; never a document.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import psycopg
from lxml import etree

from .. import db as _db, mode
from . import xmlsafe as _xml, hub, kmehr
from ..db import CLOUD_LINK, open_cloud, open_node
from .tables import AppTables, resolve, state_installed
from ..config import Settings
from ..errors import CcsyncError, Unreachable

log = logging.getLogger("ccsync.sumehr")

LIST_KEYS = ("patient", "latest_version", "hub_version", "state", "reason", "since", "attempts", "last_attempt",
             "next_attempt", "hub_transaction_id")
OFFLINE = "offline"
INVALID = "invalid Sumehr: "
_PROBE_TIMEOUT = 2
_TRANSPORT = ("HUB unreachable", "HUB timeout")  # hub.py's reasons when the HUB could not be reached at all
_MAX_TRANSPORT_FAILURES = 3  # in a row, within one pass: the HUB is down, leave the rest for the next pass


# -- configuration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SumehrConfig:
    """ccsync.toml [sumehr]: where the application keeps its Sumehrs and the privacy flag; the publisher's pace.

    Table names are SQL names (`public.sumehr_documents`, `app."Sumehr Docs"`), columns plain names.
    claim_seconds defaults to the HUB's connect + read timeouts plus 30 s (a claim outlives any request).
    """

    documents_table: str = "public.sumehr_documents"
    patient_column: str = "patient_id"
    version_column: str = "version"
    kmehr_column: str = "kmehr"
    created_column: str = "created_at"
    patients_table: str = "public.patients"
    patients_key: str = "id"
    flag_column: str = "hub_consent"
    interval_seconds: float = 5.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    claim_seconds: float | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure in a row: doubling from the base, capped."""
        return min(self.retry_base_seconds * 2 ** max(attempts - 1, 0), self.retry_max_seconds)


HUB_DEFAULTS = {"endpoint": "http://127.0.0.1:8650/hubservices/v3", "connect_timeout": 5.0, "read_timeout": 30.0,
                "verify": True, "cert": None, "auth": None, "author_nihii": None, "author_name": None}


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
        elif not isinstance(value, str) or not value:
            raise CcsyncError(f"ccsync.toml [sumehr] {name} must be a non-empty string")
        values[name] = value
    cfg = SumehrConfig(**values)
    if cfg.claim_seconds is None:
        hub_doc = {**HUB_DEFAULTS, **_section(settings, "hub")}
        try:
            claim = float(hub_doc["connect_timeout"]) + float(hub_doc["read_timeout"]) + 30.0
        except (TypeError, ValueError):
            claim = 65.0  # hub_config() reports the bad timeout
        cfg = SumehrConfig(**{**values, "claim_seconds": claim})
    return cfg


@dataclass(frozen=True)
class Publisher:
    """[hub] of ccsync.toml: how to reach the HUB, and who signs the requests."""

    hub: hub.HubConfig
    author_nihii: str | None  # None: the author of each Sumehr
    author_name: str | None


def hub_config(settings: Settings) -> Publisher:
    """[hub] of ccsync.toml: endpoint, connect_timeout, read_timeout, verify, cert, auth, author_nihii, author_name."""
    doc = _section(settings, "hub")
    unknown = sorted(set(doc) - set(HUB_DEFAULTS))
    if unknown:
        raise CcsyncError(f"ccsync.toml [hub]: unknown key {unknown[0]!r}; known keys: {', '.join(HUB_DEFAULTS)}")
    doc = {**HUB_DEFAULTS, **doc}
    for name in ("connect_timeout", "read_timeout"):
        if isinstance(doc[name], bool) or not isinstance(doc[name], (int, float)):
            raise CcsyncError(f"ccsync.toml [hub] {name} must be a number of seconds")
    if not isinstance(doc["verify"], (bool, str)):
        raise CcsyncError("ccsync.toml [hub] verify must be true, false or the path of a CA bundle")
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
                           read_timeout=float(doc["read_timeout"]), verify=doc["verify"], cert=cert, auth=auth)
    return Publisher(config, doc["author_nihii"], doc["author_name"])


def _section(settings: Settings, name: str) -> dict:
    doc = settings.extra.get(name, {})
    if not isinstance(doc, dict):
        raise CcsyncError(f"ccsync.toml: [{name}] must be a table of keys")
    return doc


# -- one publication pass -------------------------------------------------------------------------------
def publish(settings: Settings, *, node_name: str | None = None, now: datetime | None = None) -> dict:
    """One pass of the publisher. Offline (the cloud unreachable) nothing is attempted.

    `now` replaces the cloud's clock for the retry schedule only (when a failed patient is due, and its next
    attempt), so a test can step past a backoff; claims always use the cloud's clock.

    JSON keys: mode (online or offline), node, patients (flagged patients with a Sumehr), published, failed
    (the HUB refused or could not be reached), invalid (not sent: not a valid Sumehr), busy (claimed by
    another publisher), waiting (not yet due: backoff, or an invalid document waiting for a new version),
    not_up_to_date (after the pass, as `sumehr list --failed` counts them), seconds; offline also reason.
    """
    started = time.monotonic()
    cfg = sumehr_config(settings)
    publisher = hub_config(settings)
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
    _upsert(cloud, app)
    counts = {"published": 0, "failed": 0, "transport": 0, "invalid": 0, "busy": 0, "waiting": 0}
    transport_failures = 0
    for key, patient, _latest, _hub, due, busy in cloud.execute(app.to_publish(), {"clock": clock}).fetchall():
        if busy:
            counts["busy"] += 1
            continue
        if not due:
            counts["waiting"] += 1
            continue
        if transport_failures >= _MAX_TRANSPORT_FAILURES:
            counts["waiting"] += 1
            continue
        outcome = _publish_one(cloud, app, cfg, publisher, node, key, patient, clock)
        if outcome is None:
            counts["busy"] += 1
            continue
        counts[outcome] += 1
        transport_failures = transport_failures + 1 if outcome == "transport" else 0
    counts["failed"] += counts.pop("transport", 0)
    rows = cloud.execute(app.flagged()).fetchall()
    behind = sum(1 for r in rows if _row(r, offline=False)["state"] != "up_to_date")
    return {"mode": "online", "node": node, "patients": len(rows), **counts, "not_up_to_date": behind}


def _upsert(cloud: psycopg.Connection, app: AppTables) -> None:
    for attempt in (1, 2):
        try:
            changed = cloud.execute(app.upsert_state()).rowcount
        except psycopg.errors.DeadlockDetected:  # two publishers upserting at once: the loser tries again
            if attempt == 2:
                raise
            continue
        if changed:
            log.debug("Sumehr publisher: %s patient(s) with a new latest version or a new flag", changed)
        return


def _publish_one(cloud, app: AppTables, cfg: SumehrConfig, publisher: Publisher, node: str, key, patient: str,
                 clock: datetime | None) -> str | None:
    """Claim, validate, send, record. Returns published/failed/transport/invalid, or None when another took it."""
    claimed = cloud.execute(app.claim(), {"node": node, "seconds": cfg.claim_seconds, "patient": patient,
                                          "key": key, "clock": clock}).fetchone()
    if claimed is None:
        return None
    hub_version, claimed_until = claimed
    log.debug("Sumehr publisher: claimed patient %s", patient)
    try:
        row = cloud.execute(app.latest_document(), {"key": key}).fetchone()
        if row is None or (hub_version is not None and row[0] <= hub_version):
            # the documents went away or back to an older version: an older one never replaces a newer one
            _record(cloud, cfg, patient, node, claimed_until, clock, version=row[0] if row else None,
                    outcome="nothing")
            return "waiting"
        version, document = row  # str (text, xml) or bytes (bytea): both parse the same
        problems = kmehr.validate_sumehr(document)
        if problems:
            _record(cloud, cfg, patient, node, claimed_until, clock, version=version, outcome="invalid",
                    reason=INVALID + "; ".join(problems))
            return "invalid"
        document, nihii, name = _prepared(document, version)
        nihii = publisher.author_nihii or nihii
        if not nihii:
            _record(cloud, cfg, patient, node, claimed_until, clock, version=version, outcome="failed",
                    reason="no author NIHII in the Sumehr: set [hub] author_nihii in ccsync.toml")
            return "failed"
        result = hub.put_transaction(publisher.hub, document, request_id=f"{nihii}.{uuid.uuid4().hex}",
                                     author_nihii=nihii, author_name=publisher.author_name or name or "ccsync")
    except BaseException:
        _release(cloud, patient, node, claimed_until)  # crash-safe anyway: an unreleased claim expires
        raise
    if result.ok:
        _record(cloud, cfg, patient, node, claimed_until, clock, version=version, outcome="published",
                transaction_id=result.transaction_id)
        return "published"
    _record(cloud, cfg, patient, node, claimed_until, clock, version=version, outcome="failed", reason=result.reason)
    return "transport" if result.reason.startswith(_TRANSPORT) else "failed"


def _prepared(document: bytes | str, version: int) -> tuple[bytes | str, str | None, str | None]:
    """The document carrying its version as ccsync's LOCAL transaction id (how the HUB tells older from newer),
    with the author's NIHII and name. Unchanged bytes when it already carries the right version."""
    root = _xml.parse(document)
    ns = {"k": kmehr.KMEHR_NS}
    transaction = next(t for t in root.iterfind("k:folder/k:transaction", ns)
                       if any(cd.get("S") == "CD-TRANSACTION" and _xml.text_of(cd) == "sumehr"
                              for cd in t.iterfind("k:cd", ns)))
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


def _record(cloud, cfg: SumehrConfig, patient: str, node: str, claimed_until, clock, *, version: int | None,
            outcome: str, reason: str | None = None, transaction_id: str | None = None) -> None:
    """Write the outcome of one attempt on the cloud and release our claim (if it is still ours)."""
    with cloud.transaction():
        row = cloud.execute(
            "select latest_version, hub_version, hub_transaction_id, state, attempts, claimed_by, claimed_until, "
            "now() from ccsync.sumehr_state where patient = %s for update",
            (patient,),
        ).fetchone()
        if row is None:
            return
        latest, hub_version, tid, state, attempts, by, until, db_now = row
        next_attempt = None
        if outcome == "nothing":  # the newest document is not newer than the HUB's (or there is none left)
            latest, reason = version, None
        elif outcome == "published":
            if hub_version is None or version >= hub_version:
                hub_version, tid = version, transaction_id
            latest = max(latest or 0, version)
            reason, attempts = None, 0
        else:  # failed or invalid
            latest = max(latest or 0, version)
            attempts += 1
            if outcome == "failed":  # an invalid document waits for a new version or a retry
                next_attempt = (clock or db_now).timestamp() + cfg.backoff(attempts)
        if latest is not None and hub_version is not None and hub_version >= latest:
            state_now, reason, next_attempt = "up_to_date", None, None
        elif outcome == "nothing":
            state_now = state
        elif latest is not None and version < latest:
            state_now, next_attempt = "pending", None  # a newer version came in meanwhile: try it now
        elif outcome == "published":
            state_now = "pending"
        else:
            state_now = "failed"
        mine = by == node and until == claimed_until
        cloud.execute(
            "update ccsync.sumehr_state set latest_version = %(latest)s, hub_version = %(hub)s, "
            "hub_transaction_id = %(tid)s, state = %(state)s, reason = %(reason)s, attempts = %(attempts)s, "
            "last_attempt = case when %(attempted)s then now() else last_attempt end, "
            "next_attempt = to_timestamp(%(next)s), "
            "since = case when (state = 'up_to_date') = (%(state)s = 'up_to_date') then since else now() end, "
            "claimed_by = case when %(mine)s then null else claimed_by end, "
            "claimed_until = case when %(mine)s then null else claimed_until end, updated_at = now() "
            "where patient = %(patient)s",
            {"latest": latest, "hub": hub_version, "tid": tid, "state": state_now, "reason": reason,
             "attempts": attempts, "attempted": outcome != "nothing", "next": next_attempt, "mine": mine,
             "patient": patient},
        )
    log.debug("Sumehr publisher: patient %s %s", patient, outcome)


def _release(cloud, patient: str, node: str, claimed_until) -> None:
    try:
        if not cloud.closed and cloud.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            cloud.execute("update ccsync.sumehr_state set claimed_by = null, claimed_until = null, updated_at = now() "
                          "where patient = %s and claimed_by = %s and claimed_until = %s",
                          (patient, node, claimed_until))
    except psycopg.Error:
        pass


# -- reading the state (the node's database: works offline) ---------------------------------------------
def list_patients(settings: Settings, *, failed_only: bool = False) -> list[dict]:
    """Every patient whose flag is on and who has a Sumehr, from this PC's database (works offline).

    failed_only: the patients whose HUB version is not the latest. Offline (the service says so, or the
    cloud does not answer) a patient not up to date has the reason `offline`, unless its latest document
    is invalid (being online would not help it).

    JSON keys of each item: patient, latest_version, hub_version, state (up_to_date, pending, failed),
    reason, since (when it entered that state; ISO 8601), attempts, last_attempt, next_attempt (null:
    as soon as a publisher runs, or for an invalid document when a new version comes or on retry),
    hub_transaction_id.
    """
    cfg = sumehr_config(settings)
    with _db.connect(settings.need_local(), role="local database", autocommit=True) as conn:
        _db.identity(conn)
        offline = _offline(settings, conn)
        rows = _local_rows(conn, cfg)
    out = [_row(r, offline=offline) for r in rows]
    if failed_only:
        out = [r for r in out if r["state"] != "up_to_date"]
    for r in out:
        for k in ("since", "last_attempt", "next_attempt"):
            r[k] = r[k].isoformat() if r[k] else None
    return out


def count_not_up_to_date(conn: psycopg.Connection, settings: Settings) -> int:
    """How many patients `sumehr list --failed` lists, on an open connection to the node (for `ccsync status`).

    Without the configured tables in this database it counts the state rows that are not up to date.
    """
    if not state_installed(conn):
        return 0
    try:
        with conn.transaction():  # a savepoint: a failed lookup leaves the caller's transaction usable
            rows = _local_rows(conn, sumehr_config(settings))
    except (CcsyncError, psycopg.Error):
        return conn.execute("select count(*) from ccsync.sumehr_state where state <> 'up_to_date'").fetchone()[0]
    return sum(1 for r in rows if _row(r, offline=False)["state"] != "up_to_date")


def _local_rows(conn, cfg: SumehrConfig) -> list[tuple]:
    app = resolve(conn, cfg, "local database")
    return conn.execute(app.flagged() + psycopg.sql.SQL(" order by 2")).fetchall()


def _row(r: tuple, *, offline: bool) -> dict:
    """One patient as listed, from a flagged() row: the state row corrected by what the documents say now."""
    (_key, patient, latest_local, first_newer, s_latest, hub_version, s_state, s_reason, s_since, attempts,
     last_attempt, next_attempt, tid) = r
    latest = max(v for v in (latest_local, s_latest) if v is not None)
    current = s_state is not None and s_latest == latest  # the state row is about the latest version
    if hub_version is not None and hub_version >= latest:
        state, reason, since = "up_to_date", None, s_since if s_state == "up_to_date" else None
    elif current and s_state in ("pending", "failed"):
        state, reason, since = s_state, s_reason, s_since
    else:  # a version the publisher has not seen yet (written offline, or just now)
        state, reason, since = "pending", None, first_newer or s_since
    if offline and state != "up_to_date" and not (current and (reason or "").startswith(INVALID)):
        reason = OFFLINE
    if not current:
        attempts, next_attempt = 0, None
    return {"patient": patient, "latest_version": latest, "hub_version": hub_version, "state": state,
            "reason": reason, "since": since, "attempts": attempts or 0, "last_attempt": last_attempt,
            "next_attempt": next_attempt, "hub_transaction_id": tid}


def _offline(settings: Settings, node: psycopg.Connection) -> bool:
    """The node is offline, as the one mode rule decides."""
    return mode.current(node, settings.cloud, timeout=_PROBE_TIMEOUT).mode == OFFLINE


def _count_offline(settings: Settings) -> int | None:
    try:
        with _db.connect(settings.need_local(), role="local database", autocommit=True) as conn:
            return count_not_up_to_date(conn, settings)
    except (CcsyncError, psycopg.Error):
        return None


# -- retry ---------------------------------------------------------------------------------------------
def retry(settings: Settings, patient: str | None = None) -> int:
    """Make the next pass try again now (every patient not up to date, or one): returns how many were reset.

    Written on the cloud, the only place the publisher reads it; offline there is nothing to retry yet
    (the publisher starts again by itself once the cloud answers).
    """
    try:
        cloud = _cloud(settings)
    except Unreachable:
        raise CcsyncError("the cloud is unreachable: nothing can be retried offline; the publisher tries "
                          "again by itself once the cloud answers") from None
    with cloud:
        if not state_installed(cloud):
            raise CcsyncError("the cloud's ccsync schema has no Sumehr state: run `ccsync install` to upgrade it")
        if patient is not None:
            known = cloud.execute("select exists (select 1 from ccsync.sumehr_state where patient = %s)",
                                  (patient,)).fetchone()[0]
            if not known:
                app = resolve(cloud, sumehr_config(settings), "cloud database")
                if not cloud.execute(app.is_patient(), (patient,)).fetchone()[0]:
                    raise CcsyncError(f"unknown patient {patient!r}: no patient with that key keeps a Sumehr on "
                                      "the HUB (see `ccsync sumehr list`)")
        query = "update ccsync.sumehr_state set next_attempt = now(), updated_at = now() where state <> 'up_to_date'"
        params: tuple = ()
        if patient is not None:
            query += " and patient = %s"
            params = (patient,)
        count = cloud.execute(query, params).rowcount
    log.info("Sumehr publisher: %s patient(s) to retry now", count)
    return count


# -- the service task ----------------------------------------------------------------------------------
class PublisherTask:
    """A `ccsync run` task: a publication pass at most every interval_seconds while online, and at once when
    the service comes online. The pass runs in a thread of its own, so a slow HUB never holds up the sync."""

    __name__ = "Sumehr publisher"

    def __init__(self, interval: float | None = None):
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._last = float("-inf")
        self._was_online = False
        self._last_error: str | None = None

    def __call__(self, service) -> None:
        try:
            self._tick(service)
        except Exception as exc:  # noqa: BLE001 — a task must never stop the sync service
            log.warning("Sumehr publisher not started: %s", _one_line(exc))

    def _tick(self, service) -> None:
        sides = service.sides
        if sides is None or sides.cloud is None or sides.cloud.closed:
            self._was_online = False  # offline: nothing is attempted
            return
        if self._thread is not None and self._thread.is_alive():
            return
        if self.interval is None:
            try:
                self.interval = sumehr_config(service.settings).interval_seconds
            except CcsyncError:
                self.interval = SumehrConfig.interval_seconds  # each pass reports the configuration error
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
    return " ".join(text.split())[:300]
