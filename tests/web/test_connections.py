"""The panel opens this PC's database once per request (the connection on `g`, closed at teardown), and the
library works on that connection: no view opens more of its own. The cloud is opened at most once too (the status
light's probe, reused for its count)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.fix_web import (  # noqa: F401 - fixtures
    app, client, csrf_token, log_in, logged_in, session_cookie, web_practice,
)

pytestmark = pytest.mark.one_version  # the panel's Python, the same on every server version


@pytest.fixture
def opened(monkeypatch):
    """Every connection psycopg opens from now on (ccsync's all go through psycopg.connect, in reconciler.db)."""
    seen: list[tuple[str, psycopg.Connection]] = []
    real = psycopg.connect

    def counting(*args, **kwargs):
        conn = real(*args, **kwargs)
        seen.append((conn.info.dbname, conn))
        return conn

    monkeypatch.setattr(psycopg, "connect", counting)
    return seen


def _local_ones(opened, web_practice) -> list[psycopg.Connection]:
    name = conninfo_to_dict(web_practice.local)["dbname"]
    return [conn for dbname, conn in opened if dbname == name]


def _cloud_ones(opened, web_practice) -> list[psycopg.Connection]:
    name = conninfo_to_dict(web_practice.cloud)["dbname"]
    return [conn for dbname, conn in opened if dbname == name]


def _requests(web_practice, client):
    """Each page and API call of the panel, the writing ones too: (what, callable making the request)."""
    open_id, refused = web_practice.conflicts[5], web_practice.refused
    headers = {"X-CSRFToken": csrf_token(client, "/history?limit=1")}
    token = csrf_token(client, "/conflicts")
    return [
        ("GET /", lambda: client.get("/")),
        ("GET /api/status", lambda: client.get("/api/status")),
        ("GET /conflicts", lambda: client.get("/conflicts")),
        ("GET /conflicts/resolved", lambda: client.get("/conflicts/resolved")),
        ("GET /conflicts/ID", lambda: client.get(f"/conflicts/{open_id}")),
        ("GET /api/conflicts?all=1", lambda: client.get("/api/conflicts?all=1")),
        ("GET /api/conflicts/ID", lambda: client.get(f"/api/conflicts/{open_id}")),
        ("GET /history", lambda: client.get("/history")),
        ("GET /api/history", lambda: client.get("/api/history")),
        ("GET /sumehr", lambda: client.get("/sumehr")),
        ("GET /api/sumehr", lambda: client.get("/api/sumehr")),
        ("POST confirm", lambda: client.post(f"/conflicts/{open_id}/confirm",
                                             data={"keep": "cloud", "csrf_token": token})),
        ("POST resolve", lambda: client.post(f"/conflicts/{open_id}/resolve",
                                             data={"keep": "cloud", "csrf_token": token})),
        ("POST api resolve", lambda: client.post(f"/api/conflicts/{refused}/resolve", json={"keep": "discard"},
                                                 headers=headers)),
        ("GET unknown conflict", lambda: client.get("/conflicts/999999")),
    ]


def test_each_request_opens_this_pcs_database_at_most_once_and_closes_it(logged_in, web_practice, opened):
    for what, request in _requests(web_practice, logged_in):
        opened.clear()
        response = request()
        assert response.status_code != 500, (what, response.status_code)  # (Sumehr is not set up here: 503)
        local = _local_ones(opened, web_practice)
        assert len(local) <= 1, f"{what} opened this PC's database {len(local)} times"
        assert all(c.closed for c in local), f"{what} left its connection open after the request"
        # the status light probes the cloud when no service runs, and counts on that same connection what
        # waits to be pulled
        cloud = _cloud_ones(opened, web_practice)
        assert len(cloud) <= 1, f"{what} opened the cloud's database {len(cloud)} times"
        assert all(c.closed for c in cloud), f"{what} left its connection to the cloud open"
    # the writes went through: the decision and the dropped refusal are on the PC
    with psycopg.connect(web_practice.local, autocommit=True) as conn:
        rows = conn.execute("select id, status from ccsync.conflicts where id = any(%s)",
                            ([web_practice.conflicts[5], web_practice.refused],)).fetchall()
    assert {status for _, status in rows} == {"resolved"}


def test_a_login_opens_this_pcs_database_once(client, web_practice, opened):
    token = csrf_token(client)
    opened.clear()
    response = client.post("/auth/login", data={"name": "assistant", "password": "another good password",
                                                "csrf_token": token})
    assert response.status_code == 302
    assert len(_local_ones(opened, web_practice)) == 1
