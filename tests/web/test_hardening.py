"""A hardened login and panel: rate limits with lockout and logging, trusted Host names, sessions revoked on the
server, Secure cookies and proxy headers, waitress limits, values isolated from their neighbours' direction."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
import waitress

from reconciler import panel_users as users
from reconciler.config import Settings, check
from tests.fix_web import PASSWORD, SECRET, USER, csrf_token, log_in  # noqa: F401
from web import create_app
from web.serve import panel_config, waitress_options

pytestmark = pytest.mark.one_version


@pytest.fixture
def fresh_app(web_practice):
    """An app of its own: its own login counters."""
    return create_app({"SETTINGS": web_practice.settings(), "SECRET_KEY": SECRET, "TESTING": True,
                       "LOGIN_LIMIT_USER": "3 per 15 minutes", "LOGIN_LIMIT_CLIENT": "6 per 10 minutes"})


def test_failed_logins_lock_the_name_and_are_logged(fresh_app, web_practice, caplog):
    users.add(web_practice.local, "victim", "the victim's password")
    client = fresh_app.test_client()
    with caplog.at_level(logging.INFO, logger="ccsync.panel.auth"):
        for _ in range(3):
            assert log_in(client, "victim", "guess").status_code == 401
        # locked now: even the right password is refused until the window ends, and no hash is checked
        locked = log_in(client, "victim", "the victim's password")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.get_data(as_text=True)
    assert "Retry-After" in locked.headers
    assert sum("failed panel login for 'victim'" in r.getMessage() for r in caplog.records) == 3
    assert any("locked" in r.getMessage() for r in caplog.records)
    # another name from the same address is not locked by it
    assert log_in(client, USER, PASSWORD).status_code == 302


def test_failed_logins_from_one_address_are_limited_whatever_the_name(fresh_app):
    client = fresh_app.test_client()
    for i in range(6):
        assert log_in(client, f"name {i}", "guess").status_code == 401
    assert log_in(client, "yet another", "guess").status_code == 429
    other = fresh_app.test_client()
    assert log_in(other, "name 0", "guess", ).status_code == 429  # (the test client has one address)


def test_a_successful_login_costs_nothing_from_the_limits(fresh_app):
    for _ in range(5):
        assert log_in(fresh_app.test_client()).status_code == 302


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8600", "127.0.0.1.evil.example", "localhost.evil"])
def test_an_unknown_host_name_is_refused(app, web_practice, host):
    """A website that rebinds its own name to 127.0.0.1 reaches the panel with its name as the Host."""
    client = app.test_client()
    auth = {"Authorization": f"Bearer {web_practice.token}"}
    for path in ("/api/conflicts", "/auth/login"):
        assert client.get(path, headers={"Host": host, **auth}).status_code == 400
    assert client.get("/api/conflicts", headers={"Host": "127.0.0.1:8600", **auth}).status_code == 200


def test_logout_revokes_the_session_on_the_server(app):
    client = app.test_client()
    assert log_in(client).status_code == 302
    saved = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert client.get("/history").status_code == 200
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], saved)  # the cookie saved before the logout
    assert thief.get("/history").status_code == 302
    assert thief.get("/api/status").status_code == 401


def test_secure_cookies_and_proxy_headers_are_settings(web_practice, caplog):
    settings = Settings(local=web_practice.local, cloud=web_practice.cloud,
                        extra={"panel": {"secure_cookies": True, "proxy_hops": 1,
                                         "trusted_hosts": ["panel.practice.example"]}})
    app = create_app({"SETTINGS": settings, "SECRET_KEY": SECRET, **panel_config(settings, "127.0.0.1")})
    client = app.test_client()
    https = "https://panel.practice.example"
    token = csrf_token(client, https + "/auth/login")
    response = client.post(https + "/auth/login", data={"name": USER, "password": PASSWORD, "csrf_token": token},
                           headers={"Referer": https + "/auth/login"})
    assert response.status_code == 302
    assert "; Secure" in response.headers["Set-Cookie"]
    # behind the proxy, the client's address is the one the proxy saw (the login limits count per client)
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "panel.practice.example",
               "X-Forwarded-For": "203.0.113.9", "Referer": https + "/auth/login"}
    other = app.test_client()
    token = csrf_token(other, https + "/auth/login")
    with caplog.at_level(logging.INFO, logger="ccsync.panel.auth"):
        other.post(https + "/auth/login", data={"name": USER, "password": "wrong", "csrf_token": token},
                   headers=proxied)
    assert any("from 203.0.113.9" in r.getMessage() for r in caplog.records)
    assert check({"panel": {"proxy_hops": "yes", "secure_cookies": 1, "trusted_hosts": "x"}, "practice": {
        "timezone": "Mars/Olympus"}}) == [
        "[panel] proxy_hops must be a whole number from 0 to 5 (proxies in front of the panel); it is a string",
        "[panel] secure_cookies must be true or false (true behind HTTPS); it is an integer",
        "[panel] trusted_hosts must be a list of host names the panel answers to; it is a string",
        '[practice] timezone must be an IANA time zone such as "Europe/Brussels"; it is \'Mars/Olympus\'']
    plain = create_app({"SETTINGS": web_practice.settings(), "SECRET_KEY": SECRET})
    assert plain.config["SESSION_COOKIE_SECURE"] is False and plain.config["PROXY_HOPS"] == 0


def test_waitress_refuses_a_large_body_and_closes_silent_connections(app):
    options = waitress_options(app)
    assert options["max_request_body_size"] == app.config["MAX_CONTENT_LENGTH"]
    assert options["channel_timeout"] <= 30 and options["connection_limit"] >= 200
    server = waitress.create_server(app, host="127.0.0.1", port=0, **{**options, "channel_timeout": 2})
    stop = threading.Event()

    def serve():  # server.run, in short rounds: closing its sockets while it waits in select raised EBADF in it
        while not stop.is_set():
            server.asyncore.loop(timeout=0.1, map=server._map, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = server.effective_port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1073741824\r\n\r\n")
            answer = s.recv(200)
        assert b" 413 " in answer  # refused from the headers, before a gigabyte is read
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /auth/login HTTP/1.1\r\n")  # and then nothing
            started = time.monotonic()
            while s.recv(100):
                pass
            assert time.monotonic() - started < 8  # closed by the server, not held for minutes
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()


def test_a_right_to_left_override_in_a_value_is_isolated(logged_in, web_practice):
    import psycopg

    trick = "Anna \u202eevil\u202c"
    with psycopg.connect(web_practice.local, autocommit=True) as conn:
        conn.execute("update ccsync.conflicts set local_row = jsonb_set(local_row, '{notes}', to_jsonb(%s::text)) "
                     "where id = %s", (trick, web_practice.conflicts[9]))
    page = logged_in.get(f"/conflicts/{web_practice.conflicts[9]}").get_data(as_text=True)
    assert f'<bdi class="val">{trick}</bdi>' in page
    with logged_in.get("/static/panel.css") as css:
        assert "unicode-bidi: isolate" in css.get_data(as_text=True)
