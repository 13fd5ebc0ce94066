"""A HUB simulator that speaks hubservices v3 PutTransaction, with a control API, for the tests and the demo.

Run it with `python -m reconciler.devtools.hubsim --port 8650`; the SOAP endpoint is http://127.0.0.1:8650/hubservices/v3.
Drive it over HTTP: POST /control {"mode": "down"|"slow"|"failing"|"ok", "patient": "<INSS>", "seconds": 5,
"message": "…"} (no patient: every patient), GET /control/state, POST /control/reset.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import threading
from dataclasses import asdict, dataclass
from datetime import datetime

import waitress
from flask import Flask, Request, Response, jsonify, request
from lxml import etree
from waitress import wasyncore

from ..sumehr import xmlsafe as _xml
from ..sumehr.hub import CORE_NS, PROTOCOL_NS, SOAP_NS
from ..sumehr.kmehr import KMEHR_NS, KmehrError, sumehr_info, validate_sumehr

SOAP_PATH = "/hubservices/v3"
MODES = ("ok", "down", "slow", "failing")
HUB_NIHII = "19900000000"
_MAX_BODY = 20 * 1024 * 1024
_MAX_SLOW = 600.0


@dataclass(frozen=True)
class Mode:
    """How the simulated HUB behaves: ok, down (HTTP 503), slow (waits, then answers) or failing."""

    mode: str = "ok"
    seconds: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class Stored:
    """The Sumehr the HUB holds for one patient."""

    version: int
    transaction_id: str
    digest: str
    kmehr: bytes


class Rejected(Exception):
    """The HUB refuses a transaction; `errors` become the acknowledge's (cd, description) list."""

    def __init__(self, *errors: tuple[str, str]):
        super().__init__("; ".join(description for _, description in errors))
        self.errors = errors


class SimState:
    """What the simulated HUB holds and how it behaves; shared by waitress threads, so every access locks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interrupted = threading.Event()
        self._default = Mode()
        self._patient_modes: dict[str, Mode] = {}
        self._stored: dict[str, Stored] = {}
        self._requests = 0
        self._last_id = 0
        self._last_headers: dict[str, str] = {}
        self._last_soap_header: list[str] = []

    # --- control ---------------------------------------------------------------------------------

    def set_mode(self, mode: str, patient: str | None = None, seconds: float | None = None,
                 message: str | None = None) -> None:
        """Set the behaviour for one patient (by INSS) or, with no patient, the default for all.

        "ok" for a patient drops its own setting; "ok" for all also drops every patient's setting.
        """
        new = _checked_mode(mode, patient, seconds, message)
        with self._lock:
            if patient is None:
                self._default = new
                if mode == "ok":
                    self._patient_modes.clear()
            elif mode == "ok":
                self._patient_modes.pop(patient, None)
            else:
                self._patient_modes[patient] = new

    def ok(self, patient: str | None = None) -> None:
        self.set_mode("ok", patient)

    def down(self, patient: str | None = None) -> None:
        self.set_mode("down", patient)

    def slow(self, seconds: float, patient: str | None = None) -> None:
        self.set_mode("slow", patient, seconds=seconds)

    def failing(self, message: str = "HUB internal error (simulated)", patient: str | None = None) -> None:
        self.set_mode("failing", patient, message=message)

    def reset(self) -> None:
        """Forget every stored Sumehr, mode and counter, as a freshly started HUB."""
        with self._lock:
            self._default, self._patient_modes, self._stored = Mode(), {}, {}
            self._requests, self._last_id, self._last_headers, self._last_soap_header = 0, 0, {}, []

    def interrupt(self) -> None:
        """Wake every request that slow mode holds back, now and later (used when the server stops for good)."""
        self._interrupted.set()

    # --- inspection ------------------------------------------------------------------------------

    def mode_for(self, patient: str | None) -> Mode:
        with self._lock:
            return self._patient_modes.get(patient, self._default) if patient else self._default

    def stored(self, patient: str) -> Stored | None:
        with self._lock:
            return self._stored.get(patient)

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def last_headers(self) -> dict[str, str]:
        """The HTTP headers of the last PutTransaction request (names as sent)."""
        with self._lock:
            return dict(self._last_headers)

    @property
    def last_soap_header(self) -> list[str]:
        """The tags ({namespace}name) of the SOAP header blocks of the last PutTransaction request."""
        with self._lock:
            return list(self._last_soap_header)

    def snapshot(self) -> dict:
        """Stored versions per patient, modes and request count, as JSON-ready data (no documents)."""
        with self._lock:
            return {
                "requests": self._requests,
                "mode": asdict(self._default),
                "patient_modes": {inss: asdict(mode) for inss, mode in self._patient_modes.items()},
                "patients": {inss: {"version": held.version, "transaction_id": held.transaction_id}
                             for inss, held in self._stored.items()},
            }

    # --- the HUB's own behaviour -----------------------------------------------------------------

    def record_request(self, headers: dict[str, str], soap_header: list[str]) -> None:
        with self._lock:
            self._requests += 1
            self._last_headers, self._last_soap_header = headers, soap_header

    def nap(self, seconds: float) -> None:
        self._interrupted.wait(seconds)

    def store(self, patient: str, version: int, kmehr: bytes) -> Stored:
        """Keep this version unless the HUB holds a newer one; resending the same document is a no-op."""
        digest = hashlib.sha256(kmehr).hexdigest()
        with self._lock:
            held = self._stored.get(patient)
            if held is not None and held.version > version:
                raise Rejected(("OLDER.VERSION", f"a newer Sumehr (version {held.version}) is already on the HUB"))
            if held is not None and held.version == version:
                if held.digest == digest:
                    return held  # a retry after a lost answer: same answer, nothing stored twice
                raise Rejected(("SAME.VERSION", f"a different Sumehr with version {version} is already on the HUB"))
            self._last_id += 1
            self._stored[patient] = Stored(version, f"HUBSIM.{self._last_id:06d}", digest, kmehr)
            return self._stored[patient]


def _checked_mode(mode: str, patient: str | None, seconds: float | None, message: str | None) -> Mode:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if patient is not None and (not isinstance(patient, str) or not patient):
        raise ValueError("patient must be an INSS string")
    if mode == "slow":
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= _MAX_SLOW:
            raise ValueError(f"slow mode needs seconds between 0 and {_MAX_SLOW:g}")
        return Mode("slow", float(seconds))
    if mode == "failing":
        if message is not None and not isinstance(message, str):
            raise ValueError("message must be a string")
        return Mode("failing", message=message or "HUB internal error (simulated)")
    return Mode(mode)


# --- the web application ---------------------------------------------------------------------------


def make_app(state: SimState) -> Flask:
    """The simulator's WSGI application: the SOAP endpoint and the control API, over one SimState."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = _MAX_BODY

    @app.post(SOAP_PATH)
    def put_transaction() -> Response:
        return _answer_put(state, request)

    @app.post("/control")
    def control() -> Response | tuple[Response, int]:
        settings = request.get_json(silent=True)
        if not isinstance(settings, dict):
            return jsonify(error='send a JSON object such as {"mode": "down"}'), 400
        try:
            state.set_mode(settings.get("mode"), settings.get("patient"), settings.get("seconds"),
                           settings.get("message"))
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(state.snapshot())

    @app.get("/control/state")
    def control_state() -> Response:
        return jsonify(state.snapshot())

    @app.post("/control/reset")
    def control_reset() -> Response:
        state.reset()
        return jsonify(state.snapshot())

    return app


def _answer_put(state: SimState, http: Request) -> Response:
    try:
        envelope = _xml.parse(http.get_data())
    except _xml.XmlRejected as exc:
        envelope, parse_error = None, str(exc)
    else:
        parse_error = None
    put = envelope.find(f"{{{SOAP_NS}}}Body/{{{PROTOCOL_NS}}}PutTransactionRequest") if envelope is not None else None
    kmehrmessage = put.find(f"{{{KMEHR_NS}}}kmehrmessage") if put is not None else None
    # Exclusive c14n: the same document gives the same bytes whatever prefixes the envelope declares.
    kmehr = etree.tostring(kmehrmessage, method="c14n", exclusive=True) if kmehrmessage is not None else None
    patient = _patient_of(kmehr)
    state.record_request(dict(http.headers), _soap_header_tags(envelope))
    mode = state.mode_for(patient)
    if mode.mode == "down":
        return Response("HUB simulator is down\n", status=503, mimetype="text/plain")
    if mode.mode == "slow":
        state.nap(mode.seconds)
    if put is None or put.find(f"{{{CORE_NS}}}request") is None:
        return _fault(parse_error or "expected a PutTransactionRequest with a request in the SOAP body")
    try:
        if mode.mode == "failing":
            raise Rejected(("HUB.FAILURE", mode.message))
        held = _accept(state, kmehr, patient)
    except Rejected as rejected:
        return _acknowledge(put, rejected.errors, None)
    return _acknowledge(put, (), held.transaction_id)


def _patient_of(kmehr: bytes | None) -> str | None:
    if kmehr is None:
        return None
    try:
        return sumehr_info(kmehr)["inss"]
    except KmehrError:
        return None


def _soap_header_tags(envelope: etree._Element | None) -> list[str]:
    header = envelope.find(f"{{{SOAP_NS}}}Header") if envelope is not None else None
    return [child.tag for child in header if isinstance(child.tag, str)] if header is not None else []


def _accept(state: SimState, kmehr: bytes | None, patient: str | None) -> Stored:
    if kmehr is None:
        raise Rejected(("MISSING.KMEHR", "the request carries no kmehrmessage"))
    problems = validate_sumehr(kmehr)
    if problems:
        raise Rejected(*(("INVALID.KMEHR", problem) for problem in problems))
    version = sumehr_info(kmehr)["version"]
    if version is None:
        raise Rejected(("MISSING.VERSION", "the Sumehr has no LOCAL transaction id with SL=ccsync-version"))
    return state.store(patient, version, kmehr)


def _acknowledge(put: etree._Element, errors: tuple[tuple[str, str], ...], transaction_id: str | None) -> Response:
    envelope, body = _envelope()
    answer = etree.SubElement(body, f"{{{PROTOCOL_NS}}}PutTransactionResponse",
                              nsmap={"protocol": PROTOCOL_NS, "core": CORE_NS, "kmehr": KMEHR_NS})
    _response_header(answer, put)
    acknowledge = _xml.sub(answer, CORE_NS, "acknowledge")
    _xml.sub(acknowledge, CORE_NS, "iscomplete", "false" if errors else "true")
    for cd, description in errors:
        error = _xml.sub(acknowledge, CORE_NS, "error")
        _xml.sub(error, KMEHR_NS, "cd", cd, S="CD-ERROR", SV="1.0")
        _xml.sub(error, KMEHR_NS, "description", description, L="en")
    if transaction_id is not None:
        transaction = _xml.sub(answer, CORE_NS, "transaction")
        _xml.sub(transaction, CORE_NS, "id", transaction_id, S="LOCAL", SL="HUBSIM", SV="1.0")
    return _soap_response(envelope, 200)


def _response_header(answer: etree._Element, put: etree._Element) -> None:
    now = datetime.now().astimezone()
    response = _xml.sub(answer, CORE_NS, "response")
    _xml.sub(response, CORE_NS, "id", f"{HUB_NIHII}.{now:%Y%m%d%H%M%S%f}", S="ID-KMEHR", SV="1.0")
    hcparty = _xml.sub(_xml.sub(response, CORE_NS, "author"), KMEHR_NS, "hcparty")
    _xml.sub(hcparty, KMEHR_NS, "id", HUB_NIHII, S="ID-HCPARTY", SV="1.0")
    _xml.sub(hcparty, KMEHR_NS, "cd", "hub", S="CD-HCPARTY", SV="1.1")
    _xml.sub(hcparty, KMEHR_NS, "name", "HUB simulator")
    _xml.sub(response, CORE_NS, "date", now.strftime("%Y-%m-%d"))
    _xml.sub(response, CORE_NS, "time", now.strftime("%H:%M:%S"))
    response.append(copy.deepcopy(put.find(f"{{{CORE_NS}}}request")))  # the HUB echoes the request it answers


def _fault(text: str) -> Response:
    envelope, body = _envelope()
    fault = _xml.sub(body, SOAP_NS, "Fault")
    etree.SubElement(fault, "faultcode").text = "soapenv:Client"
    etree.SubElement(fault, "faultstring").text = text
    return _soap_response(envelope, 500)


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS})
    return envelope, _xml.sub(envelope, SOAP_NS, "Body")


def _soap_response(envelope: etree._Element, status: int) -> Response:
    return Response(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), status=status,
                    content_type="text/xml; charset=utf-8")


# --- serving ---------------------------------------------------------------------------------------


def serve(host: str = "127.0.0.1", port: int = 8650, state: SimState | None = None) -> None:
    """Serve the simulator with waitress until interrupted (blocking)."""
    waitress.serve(make_app(state or SimState()), host=host, port=port, threads=8)


def start_in_thread(port: int = 0, host: str = "127.0.0.1", state: SimState | None = None):
    """Serve in a background thread; port 0 picks a free port.

    Returns (url, state, stop): url is the server root (the SOAP endpoint is url + SOAP_PATH), stop() shuts
    the server down and waits for it.
    """
    state = state or SimState()
    socket_map: dict = {}
    server = waitress.create_server(make_app(state), map=socket_map, host=host, port=port, threads=8)
    stopping = threading.Event()

    def run() -> None:
        # Short loop turns, so stop() is noticed quickly; everything is closed in this thread.
        while not stopping.is_set():
            wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(socket_map)

    thread = threading.Thread(target=run, name=f"hubsim:{server.effective_port}", daemon=True)
    thread.start()

    def stop() -> None:
        state.interrupt()
        stopping.set()
        thread.join(timeout=10)

    return f"http://{host}:{server.effective_port}", state, stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reconciler.devtools.hubsim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8650)
    args = parser.parse_args(argv)
    print(f"HUB simulator: SOAP on http://{args.host}:{args.port}{SOAP_PATH}, control on /control", flush=True)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
