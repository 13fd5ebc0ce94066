"""The HUB client against the HUB simulator over real HTTP: success, refusals, outages, timeouts, auth, TLS options."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time

import pytest
import requests
from lxml import etree

from reconciler.sumehr import hub
from reconciler.errors import CcsyncError
from reconciler.sumehr.hub import HubConfig, OutgoingRequest, load_auth_hook, put_transaction
from reconciler.devtools.hubsim import SOAP_PATH, SimState, start_in_thread
from reconciler.sumehr.kmehr import KMEHR_NS, build_sumehr

ANNE, BOB = "85010100123", "90020200234"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


@pytest.fixture
def sim():
    url, state, stop = start_in_thread()
    yield url, state
    stop()


@pytest.fixture
def config(sim) -> HubConfig:
    url, _ = sim
    return HubConfig(endpoint=url + SOAP_PATH, connect_timeout=2, read_timeout=5)


@pytest.fixture
def state(sim) -> SimState:
    return sim[1]


def sumehr(inss: str = ANNE, version: int = 1, first_name: str = "Anne") -> bytes:
    return build_sumehr(inss, first_name, "Janssens", "1985-01-01", "female", version)


def put(config: HubConfig, xml: bytes) -> hub.PutResult:
    return put_transaction(config, xml, request_id="12345678901.1", author_nihii="12345678901",
                           author_name="Dr Demo")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_token(outgoing: OutgoingRequest) -> None:
    """An auth hook as a deployment would write one: an HTTP header and a WS-Security block."""
    outgoing.headers["X-Test-Token"] = "token-123"
    security = etree.SubElement(outgoing.soap_header, f"{{{WSSE_NS}}}Security")
    etree.SubElement(security, f"{{{WSSE_NS}}}BinarySecurityToken").text = "c2FtbA=="


# --- success and the HUB's refusals -----------------------------------------------------------------


def test_put_transaction_success_returns_the_hub_transaction_id(config, state):
    result = put(config, sumehr())
    assert result.ok, result.reason
    assert result.transaction_id == state.stored(ANNE).transaction_id
    assert result.transaction_id.startswith("HUBSIM.")
    assert (result.errors, result.reason) == ([], "")
    assert state.stored(ANNE).version == 1


def test_request_is_soap_11_with_the_put_transaction_action(config, state):
    put(config, sumehr())
    headers = {name.lower(): value for name, value in state.last_headers.items()}
    assert headers["content-type"] == "text/xml; charset=utf-8"
    assert headers["soapaction"] == '"urn:be:fgov:ehealth:hubservices:protocol:v3:PutTransaction"'


def test_kmehrmessage_is_embedded_as_xml_not_as_escaped_text(config):
    seen = []
    put(HubConfig(config.endpoint, auth=seen.append), sumehr(first_name="A & <B>"))
    put_request = seen[0].envelope.find(f"{{{hub.SOAP_NS}}}Body/{{{hub.PROTOCOL_NS}}}PutTransactionRequest")
    request = put_request.find(f"{{{hub.CORE_NS}}}request")
    assert request.find(f"{{{hub.CORE_NS}}}id").attrib == {"S": "ID-KMEHR", "SV": "1.0"}
    assert request.find(f"{{{hub.CORE_NS}}}author/{{{KMEHR_NS}}}hcparty") is not None
    kmehrmessage = put_request.find(f"{{{KMEHR_NS}}}kmehrmessage")
    assert kmehrmessage.find(f".//{{{KMEHR_NS}}}firstname").text == "A & <B>"


def test_newer_version_replaces_the_one_on_the_hub(config, state):
    assert put(config, sumehr(version=1)).ok
    assert put(config, sumehr(version=2)).ok
    assert state.stored(ANNE).version == 2


def test_older_version_is_rejected_with_the_hub_text_as_reason(config, state):
    assert put(config, sumehr(version=2)).ok
    result = put(config, sumehr(version=1))
    assert not result.ok and result.transaction_id is None
    assert result.reason == "HUB did not accept the Sumehr: a newer Sumehr (version 2) is already on the HUB"
    assert result.errors == [("OLDER.VERSION", "a newer Sumehr (version 2) is already on the HUB")]
    assert state.stored(ANNE).version == 2


def test_resending_the_same_document_gives_the_same_transaction(config, state):
    document = sumehr(version=3)
    first, again = put(config, document), put(config, document)
    assert first.ok and again.ok
    assert again.transaction_id == first.transaction_id
    assert state.snapshot()["patients"] == {ANNE: {"version": 3, "transaction_id": first.transaction_id}}


def test_same_version_with_other_content_is_rejected(config):
    assert put(config, sumehr(version=3)).ok
    result = put(config, sumehr(version=3, first_name="Annie"))
    assert not result.ok
    assert result.errors[0][0] == "SAME.VERSION"


def test_invalid_sumehr_is_refused_by_the_hub_with_the_problem(config, state):
    document = sumehr().replace(b"<isvalidated>true</isvalidated>", b"<isvalidated>false</isvalidated>")
    result = put(config, document)
    assert not result.ok
    assert result.reason == "HUB did not accept the Sumehr: the Sumehr is not marked validated (isvalidated is not true)"
    assert state.stored(ANNE) is None


def test_document_that_is_not_xml_is_not_sent(config, state):
    result = put(config, b"<kmehrmessage>")
    assert not result.ok
    assert result.reason.startswith("Sumehr not sent: not well-formed XML")
    assert state.requests == 0


def test_request_field_xml_cannot_carry_is_a_failed_result(config, state):
    result = put_transaction(config, sumehr(), request_id="1", author_nihii="1", author_name="Dr\x00Demo")
    assert not result.ok and result.reason.startswith("Sumehr not sent: All strings must be XML compatible")
    assert state.requests == 0


def test_concurrent_puts_keep_the_newest_version(config, state):
    documents = [sumehr(version=version) for version in range(1, 21)]
    results = []
    threads = [threading.Thread(target=lambda d=d: results.append(put(config, d))) for d in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.stored(ANNE).version == 20
    assert state.requests == 20
    assert all(r.ok or r.errors[0][0] == "OLDER.VERSION" for r in results)


# --- simulated trouble -------------------------------------------------------------------------------


def test_failing_mode_for_one_patient_gives_its_text_to_that_patient_only(config, state):
    state.failing("consent missing for this patient", patient=ANNE)
    anne, bob = put(config, sumehr(ANNE)), put(config, sumehr(BOB))
    assert (anne.ok, anne.reason) == (False, "HUB did not accept the Sumehr: consent missing for this patient")
    assert bob.ok


def test_failing_mode_for_all_patients_gives_its_text(config, state):
    state.failing("HUB database unavailable")
    results = [put(config, sumehr(ANNE)), put(config, sumehr(BOB))]
    assert [(r.ok, r.reason) for r in results] == [(False, "HUB did not accept the Sumehr: HUB database unavailable")] * 2


def test_down_mode_is_http_503(config, state):
    state.down()
    result = put(config, sumehr())
    assert (result.ok, result.reason) == (False, "HUB answered HTTP 503")


def test_down_mode_for_one_patient_leaves_the_others_up(config, state):
    state.down(patient=BOB)
    assert put(config, sumehr(ANNE)).ok
    assert put(config, sumehr(BOB)).reason == "HUB answered HTTP 503"


def test_ok_mode_brings_every_patient_back(config, state):
    state.failing("no", patient=ANNE)
    state.down()
    state.ok()
    assert put(config, sumehr(ANNE)).ok


def test_slow_hub_beyond_the_read_timeout_is_a_timeout(config, state):
    state.slow(3)
    result = put(HubConfig(config.endpoint, read_timeout=0.3), sumehr())
    assert (result.ok, result.reason) == (False, "HUB timeout after 0.3s")


def test_slow_hub_within_the_read_timeout_succeeds(config, state):
    state.slow(0.2)
    assert put(config, sumehr()).ok


def test_closed_port_is_unreachable():
    result = put(HubConfig(f"http://127.0.0.1:{closed_port()}{SOAP_PATH}", connect_timeout=2), sumehr())
    assert not result.ok
    assert result.reason.startswith("HUB unreachable (127.0.0.1:")
    assert result.reason.endswith("Connection refused")


@pytest.fixture
def plain_http_port():
    """A server that answers every connection in plain HTTP, as a misconfigured https:// endpoint would."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(timeout=5)


def test_tls_handshake_failure_is_a_failed_result_not_an_exception(plain_http_port):
    result = put(HubConfig(f"https://127.0.0.1:{plain_http_port}{SOAP_PATH}", connect_timeout=2), sumehr())
    assert not result.ok
    assert result.reason.startswith(f"HUB unreachable (127.0.0.1:{plain_http_port}): TLS error: ")


def test_tls_handshake_that_never_ends_is_a_timeout(sim):
    url, _ = sim  # waitress waits for an HTTP request line and never answers the TLS hello
    result = put(HubConfig(url.replace("http://", "https://") + SOAP_PATH, connect_timeout=0.5), sumehr())
    assert (result.ok, result.reason) == (False, "HUB timeout after 0.5s")


# --- authentication hook -------------------------------------------------------------------------------


def test_auth_hook_adds_a_header_and_a_ws_security_block_that_the_hub_sees(config, state):
    result = put(HubConfig(config.endpoint, auth=add_token), sumehr())
    assert result.ok
    assert {name.lower(): value for name, value in state.last_headers.items()}["x-test-token"] == "token-123"
    assert state.last_soap_header == [f"{{{WSSE_NS}}}Security"]


def test_failing_auth_hook_is_a_failed_result(config, state):
    def no_token(outgoing):
        raise RuntimeError("STS refused the certificate")

    result = put(HubConfig(config.endpoint, auth=no_token), sumehr())
    assert (result.ok, result.reason) == (False, "HUB auth hook failed: RuntimeError: STS refused the certificate")
    assert state.requests == 0


def test_auth_hook_is_loaded_by_its_configured_name():
    assert load_auth_hook("tests.sumehr.test_hub:add_token") is add_token


@pytest.mark.parametrize(("spec", "message"), [
    ("tests.sumehr.test_hub", "is not of the form 'package.module:function'"),
    ("no_such_module_xyz:hook", "cannot import no_such_module_xyz"),
    ("tests.sumehr.test_hub:missing", "tests.sumehr.test_hub has no function missing"),
    ("tests.sumehr.test_hub:ANNE", "tests.sumehr.test_hub has no function ANNE"),
])
def test_auth_hook_name_errors_say_what_is_wrong(spec, message):
    with pytest.raises(CcsyncError, match=message):
        load_auth_hook(spec)


# --- transport options and answers, at the unit level ---------------------------------------------------

OK_ANSWER = f"""<soapenv:Envelope xmlns:soapenv="{hub.SOAP_NS}"><soapenv:Body>
<p:PutTransactionResponse xmlns:p="{hub.PROTOCOL_NS}" xmlns:c="{hub.CORE_NS}" xmlns:k="{KMEHR_NS}">
<c:acknowledge><c:iscomplete>true</c:iscomplete></c:acknowledge>
<c:transaction><c:id S="LOCAL" SL="HUB" SV="1.0">T-1</c:id></c:transaction>
</p:PutTransactionResponse></soapenv:Body></soapenv:Envelope>"""
FAULT_ANSWER = f"""<soapenv:Envelope xmlns:soapenv="{hub.SOAP_NS}"><soapenv:Body><soapenv:Fault>
<faultcode>soapenv:Server</faultcode><faultstring>SAML assertion expired</faultstring>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"""
REFUSED_ANSWER = f"""<soapenv:Envelope xmlns:soapenv="{hub.SOAP_NS}"><soapenv:Body>
<p:PutTransactionResponse xmlns:p="{hub.PROTOCOL_NS}" xmlns:c="{hub.CORE_NS}" xmlns:k="{KMEHR_NS}">
<c:acknowledge><c:iscomplete>false</c:iscomplete>
<c:error><k:cd S="CD-ERROR" SV="1.0">E1</k:cd><k:description L="fr">pas de
  consentement</k:description></c:error>
<c:error><k:cd S="CD-ERROR" SV="1.0">E2</k:cd></c:error>
</c:acknowledge></p:PutTransactionResponse></soapenv:Body></soapenv:Envelope>"""


@pytest.fixture
def transport(monkeypatch):
    """Replace the HTTP transport: record what reaches it, answer with `transport.answer`."""

    class Transport:
        answer = (200, OK_ANSWER)
        calls: list[dict] = []

        def send(self, adapter, request, **options):
            self.calls.append(options)
            response = requests.Response()
            response.status_code, body = self.answer
            response.raw = io.BytesIO(body.encode("utf-8"))
            response.request, response.url = request, request.url
            return response

    fake = Transport()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", lambda adapter, request, **options:
                        fake.send(adapter, request, **options))
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    return fake


@pytest.mark.parametrize(("verify", "cert"), [
    (True, None),
    ("/etc/ccsync/hub-ca.pem", "/etc/ccsync/client.pem"),
    (True, ("/etc/ccsync/client.crt", "/etc/ccsync/client.key")),
])
def test_https_options_reach_the_transport(transport, verify, cert):
    config = HubConfig("https://hub.example.be/hubservices/v3", connect_timeout=3, read_timeout=20,
                       verify=verify, cert=cert)
    result = put(config, sumehr())
    assert (result.ok, result.transaction_id) == (True, "T-1")
    [options] = transport.calls
    assert (options["verify"], options["cert"], options["timeout"]) == (verify, cert, (3, 20))


@pytest.mark.parametrize(("answer", "reason"), [
    ((500, FAULT_ANSWER), "HUB answered a SOAP fault: SAML assertion expired (soapenv:Server)"),
    ((200, "<html>maintenance</html>"), "HUB answer is not a PutTransactionResponse"),
    ((200, "not xml"), "HUB answer is not a PutTransactionResponse"),
    ((502, "<html>Bad gateway</html>"), "HUB answered HTTP 502"),
    ((302, ""), "HUB answered HTTP 302"),
    ((200, REFUSED_ANSWER), "HUB did not accept the Sumehr: pas de consentement; E2"),
])
def test_hub_answers_become_one_line_reasons(transport, answer, reason):
    transport.answer = answer
    result = put(HubConfig("https://hub.example.be/hubservices/v3"), sumehr())
    assert (result.ok, result.reason) == (False, reason)


def test_hub_errors_are_kept_as_cd_and_description(transport):
    transport.answer = (200, REFUSED_ANSWER)
    result = put(HubConfig("https://hub.example.be/hubservices/v3"), sumehr())
    assert result.errors == [("E1", "pas de consentement"), ("E2", "")]


def test_config_refuses_an_endpoint_that_is_not_an_http_url():
    with pytest.raises(CcsyncError, match="is not an http"):
        HubConfig("hub.example.be:443")


@pytest.mark.parametrize("endpoint", ["http://hub.example.be/hubservices/v3", "http://10.0.0.5:8650/hubservices/v3",
                                      "http://[2001:db8::1]/hubservices/v3", "http://127.0.0.1.nip.io/x"])
def test_plain_http_is_refused_for_anything_but_this_machine(endpoint):
    with pytest.raises(CcsyncError, match=r"plain http:// would send patients' Sumehrs unencrypted.*use https://"):
        HubConfig(endpoint)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8650/hubservices/v3", "http://127.3.2.1/x",
                                      "http://localhost:8650/x", "http://[::1]:8650/x", "https://hub.example.be/x"])
def test_plain_http_to_this_machine_and_https_anywhere_are_accepted(endpoint):
    assert HubConfig(endpoint).endpoint == endpoint


@pytest.mark.parametrize("endpoint", [
    "http://hub.example.be\\@127.0.0.1:8650/hubservices/v3",  # urlsplit reads 127.0.0.1, requests connects to hub.example.be
    "https://hub.example.be\\@other.example.be/hubservices/v3",
    "http://127.0.0.1:8650\\@hub.example.be/hubservices/v3",
    "http://127.0.0.1\t.hub.example.be/x",
])
def test_an_endpoint_read_one_way_by_the_check_and_another_by_the_transport_is_refused(endpoint):
    with pytest.raises(CcsyncError, match=r"^\[hub\] endpoint can be read as more than one server .*: write it "
                                          r"plainly, as https://host\[:port\]/path$"):
        HubConfig(endpoint)


@pytest.mark.parametrize("endpoint", ["http://hubuser:S3cret@127.0.0.1:8650/hubservices/v3",
                                      "https://S3cret@hub.example.be/hubservices/v3"])
def test_an_endpoint_with_a_password_is_refused_without_showing_it(endpoint):
    with pytest.raises(CcsyncError, match="must not carry a user name or password") as info:
        HubConfig(endpoint)
    assert "S3cret" not in str(info.value)


@pytest.mark.parametrize("verify", ["", "   "])
def test_an_empty_ca_bundle_is_not_a_way_to_skip_the_certificate_check(verify):
    # requests reads verify="" as false: no certificate check, without insecure = true and without a warning
    with pytest.raises(CcsyncError, match="verify must be true, false .with insecure = true. or the path of a CA bundle"):
        HubConfig("https://hub.example.be/hubservices/v3", verify=verify)


def test_a_proxy_in_the_environment_never_sees_a_plain_http_sumehr(config, state, monkeypatch):
    proxy = socket.create_server(("127.0.0.1", 0))
    proxy.settimeout(0.5)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.getsockname()[1]}")
    with proxy:
        result = put(config, sumehr())
        with pytest.raises(TimeoutError):  # plain HTTP goes to this machine only: never through a proxy
            proxy.accept()[0].close()
    assert result.ok, result.reason
    assert state.stored(ANNE) is not None


def test_verify_false_needs_insecure_true(transport):
    with pytest.raises(CcsyncError, match="verify = false would accept any server as the HUB: set insecure = true"):
        HubConfig("https://hub.example.be/hubservices/v3", verify=False)
    config = HubConfig("https://hub.example.be/hubservices/v3", verify=False, insecure=True)
    assert put(config, sumehr()).ok
    assert transport.calls[0]["verify"] is False


# --- hostile answers: bounded in size and in time ---------------------------------------------------------


@pytest.fixture
def hostile():
    """A server that answers every request with `hostile.answer(connection)` (status line, headers and body
    written as that function pleases), on a port of its own."""

    class Hostile:
        answer = None
        port = 0

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    Hostile.port = server.getsockname()[1]
    stopping = threading.Event()

    def serve():
        while not stopping.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    def handle(connection):
        with connection:
            connection.settimeout(5)
            request = b""
            try:
                while b"</soapenv:Envelope>" not in request:
                    request += connection.recv(65536)
                Hostile.answer(connection, stopping)
            except OSError:
                pass  # the client hung up: that is what these tests expect

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield Hostile
    stopping.set()
    thread.join(5)
    server.close()


def huge(connection, stopping):
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n")  # no length: read until closed
    block = b"<x>" + b"a" * 65536 + b"</x>"
    for _ in range(5000):  # 300 MB if nobody stops reading
        if stopping.is_set():
            return
        connection.sendall(block)


def dripping_body(connection, stopping):
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n")
    while not stopping.is_set():
        connection.sendall(b" ")
        time.sleep(0.05)  # well within any read timeout: each read gets its byte


def dripping_headers(connection, stopping):
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stopping.is_set():
        connection.sendall(b"X-Drip: 1\r\n")
        time.sleep(0.05)


def test_a_huge_answer_is_not_read_beyond_the_limit(hostile):
    hostile.answer = huge
    config = HubConfig(f"http://127.0.0.1:{hostile.port}{SOAP_PATH}", read_timeout=5, max_answer_bytes=100_000)
    started = time.monotonic()
    result = put(config, sumehr())
    assert (result.ok, result.reason) == (False, "HUB answer longer than 100000 bytes: not read")
    assert time.monotonic() - started < 5


def test_a_declared_length_over_the_limit_is_refused_before_reading(transport):
    transport.answer = (200, "x" * 5000)
    result = put(HubConfig("https://hub.example.be/hubservices/v3", max_answer_bytes=4096), sumehr())
    assert result.reason == "HUB answer longer than 4096 bytes: not read"


@pytest.mark.parametrize("answer", [dripping_body, dripping_headers])
def test_a_dripping_answer_ends_at_the_deadline(hostile, answer):
    hostile.answer = answer
    config = HubConfig(f"http://127.0.0.1:{hostile.port}{SOAP_PATH}", connect_timeout=2, read_timeout=3,
                       deadline=1.5)
    started = time.monotonic()
    result = put(config, sumehr())
    elapsed = time.monotonic() - started
    assert (result.ok, result.reason) == (False, "HUB timeout: no complete answer within 1.5s")
    assert 1.4 < elapsed < 3


@pytest.fixture
def unanswered_port():
    """A port whose listener never accepts and whose queue is full: a connection attempt hangs there, as it does
    for an address that drops packets."""
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    time.sleep(0.1)
    yield server.getsockname()[1]
    for filler in fillers:
        filler.close()
    server.close()


def test_the_deadline_also_bounds_a_connection_that_hangs(unanswered_port):
    config = HubConfig(f"http://127.0.0.1:{unanswered_port}{SOAP_PATH}", connect_timeout=4, read_timeout=4,
                       deadline=1)
    started = time.monotonic()
    result = put(config, sumehr())
    elapsed = time.monotonic() - started
    assert (result.ok, result.reason) == (False, "HUB timeout: no complete answer within 1s")
    assert 0.9 < elapsed < 2.5  # not the 4 s of the connect timeout: a name with n addresses would take n times that


def test_the_deadline_also_bounds_an_auth_hook_that_waits_for_its_token(config, state):
    released = threading.Event()

    def waits_for_token(outgoing):
        released.wait(10)

    started = time.monotonic()
    result = put(HubConfig(config.endpoint, auth=waits_for_token, deadline=1), sumehr())
    elapsed = time.monotonic() - started
    assert (result.ok, result.reason) == (False, "HUB timeout: no complete answer within 1s")
    assert 0.9 < elapsed < 2.5
    for _ in range(hub._MAX_ABANDONED):  # calls left hanging are few: then no new one starts until one ends
        put(HubConfig(config.endpoint, auth=waits_for_token, deadline=0.2), sumehr())
    refused = put(HubConfig(config.endpoint, auth=waits_for_token, deadline=0.2), sumehr())
    assert refused.reason.startswith("HUB unreachable: earlier calls past their deadline still hang")
    released.set()  # the token comes, too late: nothing is sent once the deadline has passed
    time.sleep(0.3)
    assert state.requests == 0
    assert put(config, sumehr()).ok  # the hung calls ended: calls go out again


def test_the_deadline_defaults_to_connect_plus_read_timeouts_and_is_bounded():
    assert HubConfig("https://hub.example.be/x", connect_timeout=5, read_timeout=30).deadline == 35
    with pytest.raises(CcsyncError, match="deadline must be between 0 and 300 seconds"):
        HubConfig("https://hub.example.be/x", deadline=3600)


def test_a_long_hub_reason_is_stored_short_without_inss_and_logged_whole_at_debug(transport, caplog):
    long_text = "no therapeutic link for patient 85.01.01-001.23 " + "blah " * 20_000
    transport.answer = (200, REFUSED_ANSWER.replace("pas de\n  consentement", long_text))
    with caplog.at_level(logging.DEBUG, logger="reconciler.sumehr.hub"):
        result = put(HubConfig("https://hub.example.be/hubservices/v3"), sumehr())
    assert len(result.reason) <= hub.MAX_REASON and result.reason.endswith("…")
    assert result.reason.startswith("HUB did not accept the Sumehr: no therapeutic link for patient [number] blah")
    assert "85.01.01-001.23" in caplog.text  # DEBUG only: the service logs at INFO


@pytest.mark.parametrize("number", ["85010100123", "85.01.01-001.23", "850101-001-23", "85-01-01-001-23",
                                    "85/01/01/001/23", "85 01 01 001 23", "85,01,01,001,23", "８５０１０１００１２３",
                                    "(85010100123)", "850101 001.23"])
def test_an_inss_in_any_notation_is_not_kept_in_a_reason(number):
    expected = "[number]" if number[0] != "(" else "([number])"
    assert hub.bounded_reason(f"no therapeutic link for {number} today") == f"no therapeutic link for {expected} today"


def test_the_patients_name_and_birth_date_are_not_kept_in_a_reason(transport):
    refusal = ("Patient JANSSENS Anne-Marie (°01/01/1985, 85.01.01-001.23) has no therapeutic link with Dr Demo; "
               "born 1985-01-01")
    transport.answer = (200, REFUSED_ANSWER.replace("pas de\n  consentement", refusal))
    result = put(HubConfig("https://hub.example.be/hubservices/v3"),
                 build_sumehr(ANNE, "Anne-Marie", "Janssens", "1985-01-01", "female", 1))
    assert result.reason == ("HUB did not accept the Sumehr: Patient [patient] [patient] (°[patient], [number]) has no therapeutic link with Dr Demo; "
                             "born [patient]; E2")


def test_a_success_for_another_request_is_not_taken_for_ours(transport):
    other = OK_ANSWER.replace("<c:acknowledge>", '<c:response><c:request><c:id S="ID-KMEHR" SV="1.0">12345678901.other'
                                                 '</c:id></c:request></c:response><c:acknowledge>')
    transport.answer = (200, other)
    result = put(HubConfig("https://hub.example.be/hubservices/v3"), sumehr())
    assert (result.ok, result.reason) == (False, "HUB answer is for another request: not taken as an acknowledgement")
    transport.answer = (200, other.replace("12345678901.other", "12345678901.1"))
    assert put(HubConfig("https://hub.example.be/hubservices/v3"), sumehr()).ok


def test_a_transaction_id_no_hub_would_give_is_not_kept(transport):
    transport.answer = (200, OK_ANSWER.replace(">T-1<", ">" + "T" * 100_000 + "<"))
    result = put(HubConfig("https://hub.example.be/hubservices/v3"), sumehr())
    assert (result.ok, result.transaction_id) == (True, None)


def test_document_is_logged_at_debug_only(config, caplog):
    with caplog.at_level(logging.INFO, logger="reconciler.sumehr.hub"):
        assert put(config, sumehr(first_name="Zéphyrine")).ok
    assert "Zéphyrine" not in caplog.text and "accepted as HUBSIM." in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="reconciler.sumehr.hub"):
        put(config, sumehr(first_name="Zéphyrine", version=2))
    assert "Zéphyrine" in caplog.text


# --- the simulator's control API over HTTP ---------------------------------------------------------------


def test_control_api_drives_the_simulator_from_another_process(sim, config):
    url, _ = sim
    with requests.Session() as http:
        answer = http.post(f"{url}/control", json={"mode": "failing", "patient": ANNE, "message": "refused"})
        assert answer.status_code == 200
        assert put(config, sumehr(ANNE)).reason == "HUB did not accept the Sumehr: refused"
        assert put(config, sumehr(BOB, version=4)).ok
        before = http.get(f"{url}/control/state").json()
        http.post(f"{url}/control", json={"mode": "slow", "seconds": 2})
        assert put(HubConfig(config.endpoint, read_timeout=0.2), sumehr(BOB, 5)).reason == "HUB timeout after 0.2s"
        after = http.post(f"{url}/control", json={"mode": "ok"}).json()
    assert before["requests"] == 2
    assert before["patients"] == {BOB: {"version": 4, "transaction_id": before["patients"][BOB]["transaction_id"]}}
    assert before["patient_modes"] == {ANNE: {"mode": "failing", "seconds": 0.0, "message": "refused"}}
    assert (after["mode"], after["patient_modes"]) == ({"mode": "ok", "seconds": 0.0, "message": ""}, {})


@pytest.mark.parametrize("payload", [{"mode": "broken"}, {"mode": "slow"}, {"mode": "slow", "seconds": -1},
                                     {"mode": "down", "patient": 12}, ["down"]])
def test_control_api_refuses_bad_settings(sim, payload):
    url, _ = sim
    with requests.Session() as http:
        answer = http.post(f"{url}/control", json=payload)
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_control_reset_forgets_everything(sim, config):
    url, state = sim
    put(config, sumehr())
    with requests.Session() as http:
        assert http.post(f"{url}/control/reset").json()["patients"] == {}
    assert state.stored(ANNE) is None and state.requests == 0


def test_simulator_answers_garbage_with_a_soap_fault(sim):
    url, _ = sim
    with requests.Session() as http:
        answer = http.post(url + SOAP_PATH, data=b"<<<", headers={"Content-Type": "text/xml"})
    assert answer.status_code == 500
    fault = etree.fromstring(answer.content).find(f"{{{hub.SOAP_NS}}}Body/{{{hub.SOAP_NS}}}Fault")
    assert fault.findtext("faultstring").startswith("not well-formed XML")
