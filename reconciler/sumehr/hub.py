"""The HUB client: place a Sumehr on the regional HUB with hubservices v3 PutTransaction (SOAP 1.1 over HTTPS)."""

from __future__ import annotations

import importlib
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import requests
import urllib3
from lxml import etree

from . import xmlsafe as _xml
from ..errors import CcsyncError, one_line
from .kmehr import KMEHR_NS, add_physician

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PROTOCOL_NS = "http://www.ehealth.fgov.be/hubservices/protocol/v3"
CORE_NS = "http://www.ehealth.fgov.be/hubservices/core/v3"
SOAP_ACTION = '"urn:be:fgov:ehealth:hubservices:protocol:v3:PutTransaction"'
CONTENT_TYPE = "text/xml; charset=utf-8"
MAX_REASON = 300  # characters of a stored reason; the whole text goes to the log at DEBUG
MAX_TRANSACTION_ID = 100  # characters: a HUB's id is short; a longer one is not kept
MAX_DEADLINE = 300.0  # seconds: the longest a HUB call may take (a claim outlives it, see publisher)
_CHUNK = 64 * 1024
_GRACE = 0.1  # seconds after the deadline for a call whose sockets were shut to come back with its error

log = logging.getLogger(__name__)


@dataclass
class OutgoingRequest:
    """A PutTransaction call before it leaves: an auth hook may add HTTP headers or SOAP header blocks."""

    url: str
    headers: dict[str, str]
    envelope: etree._Element

    @property
    def soap_header(self) -> etree._Element:
        """The envelope's soapenv:Header, where a WS-Security block or a SAML assertion goes."""
        return self.envelope.find(f"{{{SOAP_NS}}}Header")


AuthHook = Callable[[OutgoingRequest], None]


@dataclass(frozen=True)
class HubConfig:
    """Where the HUB is and how to reach it, checked to be safe for patient data.

    endpoint: https://, or http:// to this machine only (the HUB simulator).
    verify: True (system CAs), False (no check: needs insecure=True, for tests only) or a CA bundle's path.
    cert: a client certificate, as one PEM path or a (cert, key) pair of paths.
    auth: called with every OutgoingRequest before it is sent (see load_auth_hook).
    deadline: seconds for the whole call (the auth hook, the name lookup, connect, send, the whole answer);
    default connect + read timeouts.
    max_answer_bytes: a longer answer is not read (a PutTransactionResponse is a few kB).
    """

    endpoint: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    auth: AuthHook | None = None
    insecure: bool = False
    deadline: float | None = None
    max_answer_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        url = _checked_url(self.endpoint)
        if url.scheme == "http" and not is_loopback(url.hostname):
            raise CcsyncError(f"HUB endpoint {self.endpoint!r}: plain http:// would send patients' Sumehrs "
                              "unencrypted; it is only accepted on this machine (the HUB simulator): use https://")
        if isinstance(self.verify, str) and not self.verify.strip():  # requests reads "" as "do not verify"
            raise CcsyncError("[hub] verify must be true, false (with insecure = true) or the path of a CA bundle, "
                              "not an empty text")
        if self.verify is False and not self.insecure:
            raise CcsyncError("[hub] verify = false would accept any server as the HUB: set insecure = true as well "
                              "if that is really meant (a test setup), or give the HUB's CA bundle as verify")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise CcsyncError("HUB timeouts must be positive numbers of seconds")
        if self.deadline is None:
            object.__setattr__(self, "deadline", min(self.connect_timeout + self.read_timeout, MAX_DEADLINE))
        if not 0 < self.deadline <= MAX_DEADLINE:
            raise CcsyncError(f"[hub] deadline must be between 0 and {MAX_DEADLINE:g} seconds")
        if isinstance(self.max_answer_bytes, bool) or not isinstance(self.max_answer_bytes, int) \
                or self.max_answer_bytes < 1024:
            raise CcsyncError("[hub] max_answer_bytes must be a whole number of bytes, at least 1024")


def _checked_url(endpoint: str):
    """The endpoint split into its parts, refused unless the safety checks and the transport read it alike.
    Errors never quote an endpoint that may hold a password."""
    url = urlsplit(endpoint or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CcsyncError("HUB endpoint is not an http(s) URL: give the full URL" if "@" in (endpoint or "")
                          else f"HUB endpoint {endpoint!r} is not an http(s) URL: give the full URL")
    # urllib3, which makes the connection, splits some URLs elsewhere than urlsplit ("http://a\\@127.0.0.1/" goes
    # to a; urlsplit drops a tab that urllib3 refuses): the host that is checked must be the host that is reached.
    ambiguous = CcsyncError("[hub] endpoint can be read as more than one server (a backslash, a space or a control "
                            "character in it): write it plainly, as https://host[:port]/path")
    if any(ch.isspace() or ch == "\\" or not ch.isprintable() for ch in endpoint):
        raise ambiguous
    try:
        reached = urllib3.util.parse_url(requests.Request("POST", endpoint).prepare().url).host
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError):
        raise CcsyncError("[hub] endpoint is not a valid URL (its host or port cannot be read): write it as "
                          "https://host[:port]/path") from None
    if reached is None or reached.strip("[]").lower() not in {url.hostname.lower(), _idna(url.hostname)}:
        raise ambiguous
    if "@" in url.netloc:  # requests would send them as Basic auth; reasons and logs name the endpoint's host
        raise CcsyncError("[hub] endpoint must not carry a user name or password: give credentials with an auth "
                          "hook ([hub] auth) or a client certificate ([hub] cert)")
    return url


def _idna(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine: localhost, 127.0.0.0/8 or ::1 (never a name DNS could move)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PutResult:
    """What the HUB made of a PutTransaction: ok with its transaction id, or a one-line reason why not."""

    ok: bool
    transaction_id: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (cd, description) from the acknowledge
    reason: str = ""


def load_auth_hook(spec: str) -> AuthHook:
    """The auth hook named in configuration as "package.module:function"."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CcsyncError(f"auth hook {spec!r} is not of the form 'package.module:function'")
    try:
        hook = importlib.import_module(module_name)
    except ImportError as exc:
        raise CcsyncError(f"auth hook {spec!r}: cannot import {module_name} ({exc})") from None
    for name in attribute.split("."):
        hook = getattr(hook, name, None)
    if not callable(hook):
        raise CcsyncError(f"auth hook {spec!r}: {module_name} has no function {attribute}")
    return hook


def put_transaction(config: HubConfig, xml: bytes | str, *, request_id: str, author_nihii: str,
                    author_name: str, now: datetime | None = None) -> PutResult:
    """Send one Sumehr to the HUB. Never raises for network or HUB trouble: that is a failed PutResult."""
    try:
        kmehrmessage = _xml.parse(xml)
    except _xml.XmlRejected as exc:
        return _failed(f"Sumehr not sent: {exc}")
    if kmehrmessage.tag != f"{{{KMEHR_NS}}}kmehrmessage":
        return _failed("Sumehr not sent: its root element is not a KMEHR kmehrmessage")
    try:
        envelope = _envelope(kmehrmessage, request_id, author_nihii, author_name, now or datetime.now().astimezone())
    except ValueError as exc:  # lxml refuses NUL bytes and control characters in the request fields
        return _failed(f"Sumehr not sent: {exc}")
    outgoing = OutgoingRequest(config.endpoint, {"Content-Type": CONTENT_TYPE, "SOAPAction": SOAP_ACTION}, envelope)
    private = _patient_words(kmehrmessage)  # before the call's thread (and the auth hook) holds the tree
    result = _send(config, outgoing, request_id)
    if not result.ok:  # the HUB's words may quote the patient: not kept, whatever notation the HUB writes
        result = PutResult(False, None, result.errors, bounded_reason(result.reason, private))
    log.info("HUB PutTransaction %s: %s", request_id,
             f"accepted as {result.transaction_id}" if result.ok else result.reason)
    return result


def _envelope(kmehrmessage: etree._Element, request_id: str, author_nihii: str, author_name: str,
              now: datetime) -> etree._Element:
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS})
    _xml.sub(envelope, SOAP_NS, "Header")
    body = _xml.sub(envelope, SOAP_NS, "Body")
    put = etree.SubElement(body, f"{{{PROTOCOL_NS}}}PutTransactionRequest",
                           nsmap={"protocol": PROTOCOL_NS, "core": CORE_NS, "kmehr": KMEHR_NS})
    request = _xml.sub(put, CORE_NS, "request")
    _xml.sub(request, CORE_NS, "id", request_id, S="ID-KMEHR", SV="1.0")
    author = _xml.sub(request, CORE_NS, "author")
    add_physician(author, author_nihii, author_name)
    software = _xml.sub(author, KMEHR_NS, "hcparty")
    _xml.sub(software, KMEHR_NS, "cd", "application", S="CD-HCPARTY", SV="1.1")
    _xml.sub(software, KMEHR_NS, "name", "ccsync")
    _xml.sub(request, CORE_NS, "date", now.strftime("%Y-%m-%d"))
    _xml.sub(request, CORE_NS, "time", now.strftime("%H:%M:%S"))
    put.append(kmehrmessage)  # embedded as XML: the HUB validates it against the KMEHR schema
    return envelope


def _send(config: HubConfig, outgoing: OutgoingRequest, request_id: str) -> PutResult:
    with _abandoned_lock:
        _abandoned[:] = [thread for thread in _abandoned if thread.is_alive()]
        if len(_abandoned) >= _MAX_ABANDONED:
            return _failed("HUB unreachable: earlier calls past their deadline still hang (in the auth hook or the "
                           "network); not tried again until one ends")
    call = _Deadline(config.deadline)
    done: list = []

    def exchange() -> None:
        try:
            if config.auth is not None:
                try:
                    config.auth(outgoing)
                except Exception as exc:  # noqa: BLE001 — a hook that fetches a SAML token fails like the network
                    done.append(_HookFailed(f"HUB auth hook failed: {type(exc).__name__}: {_one_line(str(exc))}"))
                    return
            if call.expired:
                return  # the hook took the whole deadline: nothing is sent
            body = etree.tostring(outgoing.envelope, xml_declaration=True, encoding="UTF-8")
            if log.isEnabledFor(logging.DEBUG):  # the document is patient data: never above DEBUG
                log.debug("HUB PutTransaction request to %s: %s", outgoing.url, body.decode("utf-8"))
            done.append(_exchange(config, outgoing, body, call))
        except BaseException as exc:  # noqa: BLE001 — handed to the caller's thread
            done.append(exc)

    # The call (the auth hook included) runs in a thread of its own, so that the deadline also bounds what no
    # socket timeout covers: a hook waiting for its token, a slow name lookup, or a name with several
    # unreachable addresses, each tried for connect_timeout.
    worker = threading.Thread(target=exchange, name="hub-call", daemon=True)
    with call:
        worker.start()
        worker.join(config.deadline + _GRACE)
        if not done:
            call.expire()  # whatever it still connects to is shut at once: nothing is sent after the deadline
            with _abandoned_lock:
                _abandoned.append(worker)
    timeout = _failed(f"HUB timeout: no complete answer within {config.deadline:g}s")
    if not done:
        return timeout
    outcome = done[0]
    if isinstance(outcome, _HookFailed):
        return _failed(str(outcome))
    if isinstance(outcome, _TooLong):
        return _failed(f"HUB answer longer than {config.max_answer_bytes} bytes: not read")
    if isinstance(outcome, (requests.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return timeout if call.expired else _failed(_network_reason(config, outcome))
    if isinstance(outcome, BaseException):
        raise outcome
    if call.expired:  # the answer was complete, but only just: the deadline still holds
        return timeout
    status, answer = outcome
    if log.isEnabledFor(logging.DEBUG):
        log.debug("HUB PutTransaction answer (HTTP %s): %s", status, answer.decode("utf-8", "replace"))
    return _read_answer(status, answer, request_id)


def _exchange(config: HubConfig, outgoing: OutgoingRequest, body: bytes, call: "_Deadline") -> tuple[int, bytes]:
    """POST the request and read the whole answer (status, body), within the call's deadline."""
    with requests.Session() as session:
        # Plain http:// is for this machine only: never through a proxy named in the environment.
        session.trust_env = urlsplit(outgoing.url).scheme == "https"
        session.mount("http://", _DeadlineAdapter(call))
        session.mount("https://", _DeadlineAdapter(call))
        # No redirects: a 302 would turn the POST into a GET and lose the document.
        with session.post(outgoing.url, data=body, headers=outgoing.headers, allow_redirects=False,
                          timeout=(config.connect_timeout, config.read_timeout), stream=True,
                          verify=config.verify, cert=config.cert) as response:
            return response.status_code, _bounded_body(response, config.max_answer_bytes)


# Calls left behind at their deadline (a thread blocked in the auth hook or a name lookup cannot be stopped):
# a few are let be, then no new call starts until one of them ends.
_MAX_ABANDONED = 4
_abandoned: list[threading.Thread] = []
_abandoned_lock = threading.Lock()


class _HookFailed(Exception):
    """The auth hook raised: its words are the reason."""


class _TooLong(Exception):
    """The HUB's answer passed max_answer_bytes."""


def _bounded_body(response: requests.Response, limit: int) -> bytes:
    """The answer's body, read in chunks and abandoned as soon as it passes `limit` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLong
    chunks, size = [], 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _TooLong
        chunks.append(chunk)
    return b"".join(chunks)


class _Deadline:
    """The overall deadline of one call: when it passes, the call's sockets are shut down, which ends any
    read or write in progress (requests' timeouts are per socket operation, so an answer dripping one byte
    at a time would never end by itself)."""

    def __init__(self, seconds: float):
        self.expired = False
        self._lock = threading.Lock()
        self._fds: list[int] = []
        self._done = False
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True  # the sockets may be closed and their numbers reused from now on

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._fds.append(sock.fileno())
            if self.expired:
                _shut(sock.fileno())

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for fd in self._fds:
                _shut(fd)


def _shut(fd: int) -> None:
    # By file descriptor: a TLS socket is a new object around the same descriptor as the TCP one.
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections report their socket to the call's deadline as soon as it is connected."""

    def __init__(self, call: _Deadline):
        self._call = call
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        call = self._call

        def watched(base):
            class Connection(base):
                def _new_conn(self):
                    sock = super()._new_conn()
                    call.watch(sock)
                    return sock
            return Connection

        pools = urllib3.connectionpool
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("Pool", (pools.HTTPConnectionPool,), {"ConnectionCls": watched(pools.HTTPConnection)}),
            "https": type("Pool", (pools.HTTPSConnectionPool,), {"ConnectionCls": watched(pools.HTTPSConnection)}),
        }


def _network_reason(config: HubConfig, exc: requests.RequestException) -> str:
    where = urlsplit(config.endpoint).netloc
    # requests reports a read timeout hit while reading the body as a ConnectionError, and one hit during
    # the TLS handshake as a ReadTimeout that waited the connect timeout: take the seconds from its message.
    if isinstance(exc, requests.ReadTimeout) or "Read timed out" in str(exc):
        waited = re.search(r"read timeout=([\d.]+)", str(exc))
        return f"HUB timeout after {float(waited.group(1)) if waited else config.read_timeout:g}s"
    if isinstance(exc, requests.ConnectTimeout):
        return f"HUB unreachable ({where}): no connection within {config.connect_timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"HUB unreachable ({where}): TLS error: {_short_cause(exc)}"
    if isinstance(exc, requests.ConnectionError):
        return f"HUB unreachable ({where}): {_short_cause(exc)}"
    return f"HUB request failed ({where}): {_short_cause(exc)}"


_CAUSES = (
    re.compile(r"\[SSL: [A-Z_]+\] ([^'\"(]+)"),  # [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed…
    re.compile(r"\[Errno -?\d+\] ([^'\")]+)"),  # [Errno 111] Connection refused
)


def _short_cause(exc: Exception) -> str:
    """The useful end of requests' nested messages ("Connection refused"), not the whole pool report."""
    message = _one_line(str(exc))
    for pattern in _CAUSES:
        found = pattern.search(message)
        if found:
            return found.group(1).strip()
    return message[:200] or type(exc).__name__


def _read_answer(status: int, answer: bytes, request_id: str) -> PutResult:
    try:
        body = _xml.parse(answer).find(f"{{{SOAP_NS}}}Body")
    except _xml.XmlRejected:
        body = None
    fault = body.find(f"{{{SOAP_NS}}}Fault") if body is not None else None
    if fault is not None:
        return _failed(f"HUB answered a SOAP fault: {_fault_text(fault)}")
    if status != 200:
        return _failed(f"HUB answered HTTP {status}")
    response = body.find(f"{{{PROTOCOL_NS}}}PutTransactionResponse") if body is not None else None
    acknowledge = response.find("{*}acknowledge") if response is not None else None
    if acknowledge is None:
        return _failed("HUB answer is not a PutTransactionResponse")
    echoed = response.find("{*}response/{*}request/{*}id")
    if echoed is not None and _xml.text_of(echoed) != request_id:  # a HUB echoes the request it answers
        return _failed("HUB answer is for another request: not taken as an acknowledgement")
    return _acknowledged(response, acknowledge)


def _fault_text(fault: etree._Element) -> str:
    # SOAP 1.1 fault children are unqualified.
    code, text = _xml.text_of(fault.find("faultcode")), _xml.text_of(fault.find("faultstring"))
    return _one_line(f"{text or 'no faultstring'}" + (f" ({code})" if code else ""))


def _acknowledged(response: etree._Element, acknowledge: etree._Element) -> PutResult:
    errors = [(_xml.text_of(error.find("{*}cd")) or "", _one_line(_xml.text_of(error.find("{*}description")) or ""))
              for error in acknowledge.iterfind("{*}error")]
    if _xml.text_of(acknowledge.find("{*}iscomplete")) == "true":
        transaction_id = _xml.text_of(response.find("{*}transaction/{*}id"))
        if transaction_id is not None and (len(transaction_id) > MAX_TRANSACTION_ID or not transaction_id.isprintable()):
            log.debug("HUB transaction id not kept (%s characters)", len(transaction_id))
            transaction_id = None  # stored and replicated to every PC: not whatever a HUB answers
        return PutResult(True, transaction_id, errors, "")
    reason = "; ".join(description or cd for cd, description in errors if description or cd)
    return PutResult(False, None, errors, f"HUB did not accept the Sumehr: {reason}" if reason
                     else "HUB did not accept the Sumehr and gave no error")


def _failed(reason: str) -> PutResult:
    return PutResult(False, None, [], reason)  # put_transaction bounds it


# An INSS (or any 11-digit number, a NIHII too) in a HUB's error text is not kept, whatever separates its digits:
# 85010100123, 85.01.01-001.23, 850101-001-23, 85 01 01 001 23.
_ELEVEN_DIGITS = re.compile(r"(?<!\d)\d(?:[\s./,-]*\d){10}(?!\d)")


def bounded_reason(text: str, private: tuple[str, ...] | list[str] = ()) -> str:
    """A reason fit to be stored and replicated: one line, no INSS-like number, none of the `private` words (the
    patient's names and birth date), at most MAX_REASON characters. The whole text goes to the log at DEBUG."""
    line = _one_line(text)
    short = _ELEVEN_DIGITS.sub("[number]", line)
    words = sorted({w for w in private if w}, key=len, reverse=True)
    if words:
        short = re.sub(r"(?<!\w)(?:%s)(?!\w)" % "|".join(map(re.escape, words)), "[patient]", short, flags=re.IGNORECASE)
    if len(short) > MAX_REASON:
        short = short[:MAX_REASON - 1].rstrip() + "…"
    if short != line:
        log.debug("HUB reason in full: %s", line)
    return short


def _patient_words(kmehrmessage: etree._Element) -> list[str]:
    """What names the patient in a HUB's words: the names (whole, and each part of three letters or more) and the
    birth date as Belgian texts write it."""
    words = []
    for patient in kmehrmessage.iter(f"{{{KMEHR_NS}}}patient"):
        for tag in ("firstname", "familyname"):
            for element in patient.iter(f"{{{KMEHR_NS}}}{tag}"):
                name = _xml.text_of(element)
                if name:
                    words.append(_one_line(name))
                    words += [part for part in re.split(r"[\s\-']+", name) if len(part) >= 3]
        born = _xml.text_of(patient.find(f"{{{KMEHR_NS}}}birthdate/{{{KMEHR_NS}}}date"))
        if born and re.fullmatch(r"\d{4}-\d{2}-\d{2}", born):
            y, m, d = born.split("-")
            words += [f"{y}{m}{d}"] + [f"{y}{sep}{m}{sep}{d}" for sep in "-/."] + \
                     [f"{d}{sep}{m}{sep}{y}" for sep in "-/."]
    return words


def _one_line(text: str) -> str:
    # control and format characters (a terminal's CSI, bidi overrides) become spaces: a reason is shown as is
    return one_line("".join(ch if ch.isprintable() else " " for ch in text))
