"""The panel through Flask's test client, against real PostgreSQL with real conflicts of every kind: every
route, the login flow, CSRF, API tokens, escaping, and each error status (never a 500, never a DSN)."""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import cli
from reconciler import status as engine_status
from reconciler.config import Settings
from reconciler.errors import CcsyncError, InvalidDsn, NotAllowed, Refused, Unreachable
from reconciler.devtools.pgserver import free_port
from tests.fix_web import (  # noqa: F401 - fixtures
    HOSTILE, PASSWORD, SCENARIO, SECRET, USER, app, client, csrf_token, log_in, logged_in, session_cookie, web_practice,
)
from reconciler import panel_users as users
from web import create_app
from web.serve import secret_key

pytestmark = pytest.mark.one_version  # behaviour that does not depend on the PostgreSQL version

PAGES = ["/", "/conflicts", "/conflicts/resolved", "/sumehr", "/sumehr?all=1", "/history", "/history?limit=5"]
API = ["/api/status", "/api/conflicts", "/api/conflicts?all=1", "/api/history", "/api/history?limit=3"]


def cid(web_practice, patient: int) -> int:
    return web_practice.conflicts[patient]


def html(response) -> str:
    return response.get_data(as_text=True)


def conflict_status_of(web_practice, record: int) -> str:
    with psycopg.connect(web_practice.local) as conn:
        return conn.execute("select status from ccsync.conflicts where id = %s", (record,)).fetchone()[0]


def conflict_status(web_practice, patient: int) -> str:
    with psycopg.connect(web_practice.local) as conn:
        return conn.execute("select status from ccsync.conflicts where id = %s",
                            (cid(web_practice, patient),)).fetchone()[0]


def local_row(web_practice, patient: int) -> dict:
    with psycopg.connect(web_practice.local) as conn:
        row = conn.execute("select to_jsonb(p) from patients p where id = %s", (patient,)).fetchone()
        return row[0] if row else None


def api_headers(client) -> dict:
    return {"X-CSRFToken": csrf_token(client, "/history?limit=1"), "Content-Type": "application/json"}


# -- login ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES + ["/conflicts/1", "/nowhere"])
def test_every_page_sends_a_stranger_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


@pytest.mark.parametrize("path", API + ["/api/conflicts/1", "/api/sumehr"])
def test_every_api_call_without_credentials_is_401_json(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "error" in response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/conflicts/1/resolve", "/api/conflicts/1/resolve", "/sumehr/1/retry",
                                  "/api/sumehr/1/retry"])
def test_every_post_without_credentials_is_refused_and_changes_nothing(client, web_practice, path):
    response = client.post(path, data={"keep": "local"})
    assert response.status_code in (302, 401)
    assert conflict_status(web_practice, 1) == "open"


def test_login_flow_with_next_and_logout(client):
    assert client.get("/conflicts").headers["Location"] == "/auth/login?next=/conflicts"
    response = log_in(client, next_path="/conflicts")
    assert response.status_code == 302 and response.headers["Location"] == "/conflicts"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/conflicts")
    assert page.status_code == 200 and USER in html(page)
    assert client.get("/auth/logout").status_code == 405  # logging out is a POST, with its CSRF token
    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    assert client.get("/api/status").status_code == 401


@pytest.mark.parametrize("name, password", [(USER, "wrong password"), ("nobody", PASSWORD), ("", "")])
def test_wrong_name_or_password_is_refused_without_saying_which(client, name, password):
    response = log_in(client, name, password)
    assert response.status_code == 401
    assert "Wrong name or password." in html(response)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_login_never_redirects_to_another_site(client, target):
    response = log_in(client, next_path=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_login_without_csrf_token_is_400(client):
    client.get("/auth/login")
    response = client.post("/auth/login", data={"name": USER, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in html(response)
    assert client.get("/").status_code == 302


def test_a_new_password_or_removal_ends_the_users_sessions(app, client, web_practice):
    users.add(web_practice.local, "temp", "temporary password")
    assert log_in(client, "temp", "temporary password").status_code == 302
    assert client.get("/history").status_code == 200
    users.add(web_practice.local, "temp", "a new password", replace=True)
    assert client.get("/history").status_code == 302
    assert log_in(client, "temp", "a new password").status_code == 302
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert client.get("/history").status_code == 200
    users.remove(web_practice.local, "temp")
    assert client.get("/history").status_code == 302
    other = app.test_client()
    other.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)  # a copy of the cookie is no better
    assert other.get("/history").status_code == 302


def test_login_stamps_last_login(client, web_practice):
    log_in(client, "assistant", "another good password")
    listed = {u["name"]: u for u in users.list_users(web_practice.local)}
    assert listed["assistant"]["last_login_at"] is not None


# -- every route -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_the_status_light_and_no_dsn(logged_in, web_practice, path):
    response = logged_in.get(path)
    assert response.status_code == 200
    body = html(response)
    assert 'id="status-light"' in body and "panel.js" in body
    for secret in (web_practice.local, web_practice.cloud, "dbname=", "user=postgres", SECRET, PASSWORD):
        assert secret not in body
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", API)
def test_every_api_get_answers_json_without_dsn(logged_in, web_practice, path):
    response = logged_in.get(path)
    assert response.status_code == 200 and response.is_json
    for secret in (web_practice.local, web_practice.cloud, "dbname="):
        assert secret not in html(response)


def test_status_page_and_api_show_mode_counts_and_node(logged_in):
    doc = logged_in.get("/api/status").get_json()
    assert {"mode", "node", "pending_push", "pending_pull", "open_conflicts", "hub_failures", "last_sync_at",
            "last_error", "use", "service", "mode_since", "progress"} <= set(doc)
    assert doc["node"] == "pc-1" and doc["mode"] == "online"
    page = html(logged_in.get("/"))
    assert "Status of pc-1" in page and "Online" in page and "Waiting to push" in page


def test_conflicts_page_lists_each_open_conflict_with_its_magnifying_glass(logged_in, web_practice):
    page = html(logged_in.get("/conflicts"))
    for kind in ("changed on both sides", "deleted here, changed on the cloud", "changed here, deleted on the cloud",
                 "created on both sides"):
        assert kind in page
    assert f'href="/conflicts/{cid(web_practice, 1)}"' in page
    assert f'aria-label="Open conflict {cid(web_practice, 1)}"' in page
    assert "public.patients" in page and "id=1" in page


def test_detail_shows_both_versions_base_and_highlights_from_the_diff(logged_in, web_practice):
    page = html(logged_in.get(f"/conflicts/{cid(web_practice, 1)}"))
    assert 'class="state-conflict" data-field-name="phone"' in page
    assert 'class="state-conflict" data-field-name="name"' in page
    assert 'class="state-same" data-field-name="notes"' in page
    for text in ("local 1", "cloud 1", "base 1", "Anna Cloud", "Use this PC's values", "Keep the cloud's version",
                 "Check the merged version"):
        assert text in page
    # neutral: no choice is the filled primary button, and no merge choice is made for the user
    decide = page[page.index('id="keep-local"') - 200:]
    assert "button primary" not in decide
    assert "checked" not in page[page.index('id="merge"'):]


@pytest.mark.parametrize("patient, present", [
    (6, ["deleted", "Delete the record everywhere, as this PC did", "cloud 6", "Keep the record everywhere, with values"]),
    (7, ["local 7", "The record stays deleted everywhere", "Bring the record back everywhere, as this PC has it",
         "Bring the record back everywhere, with values"]),
    (8, ["from pc-1", "from the cloud", "Keep the cloud's record", "Choose, field by field"]),
])
def test_detail_of_each_other_kind_says_what_happens_to_the_record_and_offers_a_merge(logged_in, web_practice,
                                                                                       patient, present):
    page = html(logged_in.get(f"/conflicts/{cid(web_practice, patient)}"))
    for text in present:
        assert text in page
    assert 'id="merge"' in page


def test_a_patient_name_holding_a_script_is_escaped(logged_in, web_practice):
    page = html(logged_in.get(f"/conflicts/{cid(web_practice, 1)}"))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    doc = logged_in.get(f"/api/conflicts/{cid(web_practice, 1)}").get_json()
    assert doc["local_row"]["name"] == HOSTILE  # the data itself is untouched


def test_history_page_and_api_list_the_runs(logged_in):
    runs = logged_in.get("/api/history").get_json()
    assert runs and {"direction", "changes", "conflicts", "seconds", "error"} <= set(runs[0])
    page = html(logged_in.get("/history"))
    assert "Sync history" in page and "initial copy" in page


# -- resolving ---------------------------------------------------------------------------------------------
def test_keep_local_is_confirmed_first_then_leaves_the_list_and_appears_decided(logged_in, web_practice):
    conflict = cid(web_practice, 2)
    token = csrf_token(logged_in, f"/conflicts/{conflict}")
    confirm = logged_in.post(f"/conflicts/{conflict}/confirm", data={"keep": "local", "csrf_token": token})
    assert confirm.status_code == 200
    page = html(confirm)
    # exactly what will be written, and where; nothing written yet
    assert 'data-action="update"' in page and 'data-field-name="phone"' in page and "local 2" in page
    assert "then on the cloud and every other PC at the next sync" in page
    assert conflict_status(web_practice, 2) == "open" and local_row(web_practice, 2)["phone"] == "cloud 2"
    response = logged_in.post(f"/conflicts/{conflict}/resolve", data={"keep": "local", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/conflicts"
    listing = html(logged_in.get("/conflicts"))
    assert f'id="conflict-{conflict}"' not in listing
    assert "Decision recorded for" in listing and "the record is changed on this PC now." in listing
    resolved = html(logged_in.get("/conflicts/resolved"))
    assert f'id="conflict-{conflict}"' in resolved and "this PC's version" in resolved and USER in resolved
    assert local_row(web_practice, 2)["phone"] == "local 2"
    detail = html(logged_in.get(f"/conflicts/{conflict}"))
    assert "this PC's version" in detail and '<details class="panel decide" id="decide">' in detail  # folded


def test_a_decided_conflict_is_decided_again_with_a_confirmation_and_both_decisions_are_kept(logged_in, web_practice):
    conflict = cid(web_practice, 8)
    token = csrf_token(logged_in, f"/conflicts/{conflict}")
    assert logged_in.post(f"/conflicts/{conflict}/resolve", data={"keep": "local", "csrf_token": token}).status_code == 302
    web_practice.practice.sync_all()  # the cloud accepts the first decision
    detail = html(logged_in.get(f"/conflicts/{conflict}"))
    assert "Decide again" in detail and 'name="revisit" value="1"' in detail
    confirm = html(logged_in.post(f"/conflicts/{conflict}/confirm",
                                  data={"keep": "cloud", "revisit": "1", "csrf_token": token}))
    # what changes is measured against the decision in force (this PC's value), not the cloud's first version
    assert 'id="revisit-note"' in confirm and 'data-action="update"' in confirm
    assert 'data-field-name="name"' in confirm and "from pc-1" in confirm and "from the cloud" in confirm
    assert local_row(web_practice, 8)["name"] == "from pc-1"  # nothing written yet
    response = logged_in.post(f"/conflicts/{conflict}/resolve",
                              data={"keep": "cloud", "revisit": "1", "csrf_token": token})
    assert response.status_code == 302
    assert local_row(web_practice, 8)["name"] == "from the cloud"
    web_practice.practice.sync_all()
    doc = logged_in.get(f"/api/conflicts/{conflict}").get_json()
    assert doc["resolution"] == "revisited: kept cloud"
    assert [(d["resolution"], d["by"]) for d in doc["decisions"]] == [("kept local", USER),
                                                                      ("revisited: kept cloud", USER)]
    detail = html(logged_in.get(f"/conflicts/{conflict}"))
    assert 'id="decisions"' in detail and "the cloud's version (decided again)" in detail
    # an open conflict is not "decided again", a decided one not decided as if it were open
    assert logged_in.post(f"/conflicts/{cid(web_practice, 9)}/confirm",
                          data={"keep": "cloud", "revisit": "1", "csrf_token": token}).status_code == 302
    assert logged_in.post(f"/conflicts/{conflict}/resolve",
                          data={"keep": "cloud", "csrf_token": token}).status_code == 409


def test_deciding_again_the_merge_form_starts_at_the_decision_in_force_and_writes_only_what_is_chosen(
        logged_in, web_practice):
    """Kept this PC's phone and notes; decided again, merging only the notes from the cloud: the phone stays
    this PC's (the decision in force), it does not fall back to the cloud's first version."""
    conflict = cid(web_practice, 12)
    token = csrf_token(logged_in, f"/conflicts/{conflict}")
    assert logged_in.post(f"/conflicts/{conflict}/resolve", data={"keep": "local", "csrf_token": token}).status_code == 302
    web_practice.practice.sync_all()
    detail = html(logged_in.get(f"/conflicts/{conflict}"))
    merge = detail[detail.index('id="merge"'):]
    phone = merge[merge.index('data-field-name="phone"'):]
    phone = phone[:phone.index("</tr>")]
    assert 'name="choice:phone" value="" checked' in phone and 'name="other:phone" value="local 12"' in phone
    assert "cloud 12" in phone  # offered, not chosen
    form = {"keep": "merged", "revisit": "1", "choice:notes": "cloud", "choice:phone": "", "csrf_token": token}
    confirm = html(logged_in.post(f"/conflicts/{conflict}/confirm", data=form))
    assert 'data-action="update"' in confirm and 'data-field-name="notes"' in confirm
    assert 'data-field-name="phone"' not in confirm  # the confirmation shows exactly what is written: not the phone
    merged_json = json.loads(confirm.split('name="merged_json" value="')[1].split('"')[0].replace("&#34;", '"'))
    assert merged_json == {"notes": "cloud note 12"}
    assert logged_in.post(f"/conflicts/{conflict}/resolve", data=form).status_code == 302
    assert (local_row(web_practice, 12)["phone"], local_row(web_practice, 12)["notes"]) == ("local 12", "cloud note 12")
    web_practice.practice.sync_all()
    with psycopg.connect(web_practice.cloud) as conn:
        assert conn.execute("select phone, notes from patients where id = 12").fetchone() == ("local 12", "cloud note 12")


def test_a_refused_records_reason_is_stored_as_a_code_and_read_in_the_readers_language(logged_in, web_practice):
    record = web_practice.refused
    with psycopg.connect(web_practice.local) as conn:
        stored = conn.execute("select reason from ccsync.conflicts where id = %s", (record,)).fetchone()[0]
    assert json.loads(stored) == {"code": "parent_missing", "op": "I", "subject": "public.encounters",
                                  "parent": "public.patients"}  # names, never a value
    doc = logged_in.get(f"/api/conflicts/{record}").get_json()
    assert doc["reason"] == ("the cloud refused this PC's new row in public.encounters: the row of public.patients it "
                             "refers to is not on the cloud (deleted there)") and doc["reason_code"]["code"] == "parent_missing"
    for lang, words in (("fr", "Le cloud a refusé la nouvelle ligne dans"), ("nl", "De cloud weigerde de nieuwe rij in"),
                        ("en", "The cloud refused this PC&#39;s new row in")):
        page = html(logged_in.get(f"/conflicts/{record}", headers={"Accept-Language": lang}))
        reason = page[page.index('id="refusal-reason"'):].split("</dd>")[0]
        assert words in reason and "<bdi>public.encounters</bdi>" in reason and "<bdi>public.patients</bdi>" in reason
        if lang != "en":
            assert "refused" not in reason and "cloud refused" not in reason
    sentence = "the cloud refused this PC's change to public.encounters (an older ccsync's words)"
    with psycopg.connect(web_practice.local) as conn:  # a record from before the codes: shown as it is
        conn.execute("update ccsync.conflicts set reason = %s where id = %s", (sentence, record))
    try:
        assert sentence.replace("'", "&#39;") in html(logged_in.get(f"/conflicts/{record}",
                                                                    headers={"Accept-Language": "fr"}))
        assert logged_in.get(f"/api/conflicts/{record}").get_json()["reason_code"] is None
    finally:
        with psycopg.connect(web_practice.local) as conn:
            conn.execute("update ccsync.conflicts set reason = %s where id = %s", (stored, record))


def test_every_refusal_code_reads_in_english_french_and_dutch_with_its_names():
    """Every sentence reconciler/refusal_reasons.py can word has the panel's words, in each language."""
    from reconciler import refusal_reasons
    from web.present import REFUSALS, REFUSED_SUBJECTS, refusal

    assert set(REFUSALS) == set(refusal_reasons.SENTENCES) and set(REFUSED_SUBJECTS) == set(refusal_reasons.SUBJECTS)
    names = {"subject": "public.visits", "table": "public.visits", "parent": "public.patients", "child": "public.notes",
             "columns": "inss", "column": "name", "constraint": "visits_check", "sqlstate": "23514", "record": "41",
             "resolution": "kept local", "by": "Dr Peeters", "at": "2026-03-01 10:15 UTC", "message": "no"}
    app = create_app({"LOCAL_DSN": "dbname=x", "SECRET_KEY": SECRET})
    for key, english in refusal_reasons.SENTENCES.items():
        code = key.removesuffix("_any")
        optional = refusal_reasons.OPTIONAL.get(code)
        for op in refusal_reasons.SUBJECTS:
            params = {k: v for k, v in names.items() if f"{{{k}}}" in english or k == "subject"}
            if key.endswith("_any"):
                params.pop(optional, None)
            elif optional:
                params[optional] = names[optional]
            text = refusal_reasons.document(code, op=op, **params)
            assert refusal_reasons.variant(json.loads(text)) == key
            line = refusal_reasons.english(text)
            assert "{" not in line and all(v in line for k, v in params.items() if k in english), line
            words = {}
            for lang in ("en", "fr", "nl"):
                with app.test_request_context(headers={"Accept-Language": lang}):
                    words[lang] = str(refusal({"reason_code": json.loads(text), "reason": line}))
            assert len(set(words.values())) == 3, words  # three languages, three texts
            for lang, said in words.items():
                assert all(f"<bdi>{v}</bdi>" in said for k, v in params.items()
                           if k in ("table", "parent", "child", "columns", "constraint", "record", "by")
                           and f"%({k})s" in str(REFUSALS[key])), (lang, said)
    assert refusal_reasons.parse("the cloud refused this PC's change") is None  # a sentence, from before the codes
    assert refusal_reasons.english("the cloud refused this PC's change") == "the cloud refused this PC's change"


def test_a_refused_transaction_shows_its_reason_and_changes_and_is_dropped_after_a_confirmation(logged_in,
                                                                                               web_practice):
    record = web_practice.refused
    listing = html(logged_in.get("/conflicts"))
    assert f'id="conflict-{record}"' in listing and "refused by the cloud" in listing
    detail = html(logged_in.get(f"/conflicts/{record}"))
    assert 'id="refusal-reason"' in detail and "public.encounters" in detail and "a visit" in detail
    assert 'id="keep-discard"' in detail and 'id="keep-apply-again"' in detail and 'id="keep-local"' not in detail
    fr = html(logged_in.get(f"/conflicts/{record}", headers={"Accept-Language": "fr"}))
    assert "refusé par le cloud" in fr and "Abandonner les modifications" in fr
    token = csrf_token(logged_in, f"/conflicts/{record}")
    again = html(logged_in.post(f"/conflicts/{record}/confirm", data={"keep": "apply-again", "csrf_token": token}))
    assert 'data-action="apply-again"' in again and 'id="entries"' in again and "a visit" in again
    confirm = html(logged_in.post(f"/conflicts/{record}/confirm", data={"keep": "discard", "csrf_token": token}))
    assert 'data-action="discard"' in confirm and conflict_status_of(web_practice, record) == "open"
    assert logged_in.post(f"/conflicts/{record}/confirm", data={"keep": "local", "csrf_token": token}).status_code == 400
    response = logged_in.post(f"/conflicts/{record}/resolve", data={"keep": "discard", "csrf_token": token})
    assert response.status_code == 302 and conflict_status_of(web_practice, record) == "resolved"
    assert "the refused changes are dropped." in html(logged_in.get("/conflicts"))
    assert "changes dropped" in html(logged_in.get("/conflicts/resolved"))


def test_merged_version_from_the_form_writes_the_chosen_values(logged_in, web_practice):
    conflict = cid(web_practice, 3)
    token = csrf_token(logged_in, f"/conflicts/{conflict}")
    response = logged_in.post(f"/conflicts/{conflict}/resolve", data={
        "csrf_token": token, "keep": "merged",
        "choice:phone": "other", "other:phone": "merged <3>",
        "choice:balance": "local",
    })
    assert response.status_code == 302
    row = local_row(web_practice, 3)
    assert (row["phone"], row["balance"]) == ("merged <3>", 33.30)
    doc = logged_in.get(f"/api/conflicts/{conflict}").get_json()
    assert doc["resolution"] == "kept merged" and doc["resolved_by"] == USER


@pytest.mark.parametrize("form, message", [
    ({"keep": "both"}, "keep must be local, cloud or merged"),
    ({"keep": "merged", "choice:phone": "mine"}, "choose local, cloud or other for phone"),
    ({"keep": "merged", "choice:balance": "other", "other:balance": "lots"}, "balance takes a number"),
    ({"keep": "merged", "choice:balance": "other", "other:balance": "NaN"}, "balance takes a number"),
])
def test_wrong_input_from_the_form_is_400_and_changes_nothing(logged_in, web_practice, form, message):
    conflict = cid(web_practice, 10)
    response = logged_in.post(f"/conflicts/{conflict}/resolve",
                              data={**form, "csrf_token": csrf_token(logged_in, f"/conflicts/{conflict}")})
    assert response.status_code == 400
    assert message in html(response)
    assert conflict_status(web_practice, 10) == "open"


def test_resolving_without_csrf_token_is_400_and_changes_nothing(logged_in, web_practice):
    conflict = cid(web_practice, 9)
    response = logged_in.post(f"/conflicts/{conflict}/resolve", data={"keep": "local"})
    assert response.status_code == 400
    assert "CSRF" in html(response)
    response = logged_in.post(f"/conflicts/{conflict}/resolve", data={"keep": "local", "csrf_token": "forged"})
    assert response.status_code == 400
    response = logged_in.post(f"/api/conflicts/{conflict}/resolve", json={"keep": "local"})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    assert conflict_status(web_practice, 9) == "open"


def test_api_resolve_with_the_session_needs_the_csrf_header(logged_in, web_practice):
    conflict = cid(web_practice, 5)
    response = logged_in.post(f"/api/conflicts/{conflict}/resolve", data=json.dumps({"keep": "cloud"}),
                              headers=api_headers(logged_in))
    assert response.status_code == 200
    doc = response.get_json()
    assert (doc["status"], doc["resolution"], doc["resolved_by"]) == ("resolved", "kept cloud", USER)
    again = logged_in.post(f"/api/conflicts/{conflict}/resolve", data=json.dumps({"keep": "local"}),
                           headers=api_headers(logged_in))
    assert again.status_code == 409
    assert "already resolved" in again.get_json()["error"]
    page = logged_in.post(f"/conflicts/{conflict}/resolve",
                          data={"keep": "local", "csrf_token": csrf_token(logged_in, "/history?limit=1")})
    assert page.status_code == 409 and "already resolved" in html(page)


@pytest.mark.parametrize("body, message", [
    ("not json", "the body must be JSON"),
    ("[1, 2]", '"keep"'),
    ('{"keep": "both"}', "keep must be local, cloud or merged"),
    ('{"keep": "merged"}', "give the merged row"),
    ('{"keep": "local", "merged": {"phone": "x"}}', "give the merged row"),
    ('{"keep": "merged", "merged": ["phone"]}', "must be an object"),
    ('{"keep": "merged", "merged": {"nope": 1}}', "unknown column"),
    ('{"keep": "merged", "merged": {"id": 42}}', "primary key"),
    ('{"keep": "merged", "merged": {"balance": "not a number"}}', "the database refused the values"),
    ('{"keep": "local", "by": "someone else"}', "unknown field(s) in the body: by"),
])
def test_wrong_input_to_the_api_is_400_and_changes_nothing(logged_in, web_practice, body, message):
    conflict = cid(web_practice, 10)
    response = logged_in.post(f"/api/conflicts/{conflict}/resolve", data=body, headers=api_headers(logged_in))
    assert response.status_code == 400, response.get_json()
    assert message in response.get_json()["error"]
    assert conflict_status(web_practice, 10) == "open"


@pytest.mark.parametrize("query", ["/api/history?limit=0", "/api/history?limit=x", "/history?limit=-1",
                                   "/api/conflicts?all=yes", "/api/sumehr?all=2"])
def test_wrong_query_arguments_are_400(logged_in, query):
    assert logged_in.get(query).status_code == 400


@pytest.mark.parametrize("path", ["/conflicts/999999", "/api/conflicts/999999", "/conflicts/99999999999999999999999",
                                  "/api/conflicts/abc", "/nowhere", "/api/nowhere"])
def test_unknown_ids_and_addresses_are_404(logged_in, path):
    response = logged_in.get(path)
    assert response.status_code == 404
    if path.startswith("/api/"):
        assert response.is_json


@pytest.mark.parametrize("path", ["/conflicts/999999/resolve", "/api/conflicts/999999/resolve",
                                  "/api/conflicts/99999999999999999999999/resolve"])
def test_resolving_an_unknown_conflict_is_404(logged_in, path):
    response = logged_in.post(path, data=json.dumps({"keep": "local"}) if "/api/" in path else {"keep": "local"},
                              headers=api_headers(logged_in) if "/api/" in path else {"X-CSRFToken": csrf_token(logged_in, "/history?limit=1")})
    assert response.status_code == 404


def test_wrong_method_is_405_not_500(logged_in, web_practice):
    assert logged_in.get(f"/conflicts/{cid(web_practice, 9)}/resolve").status_code == 405
    assert logged_in.delete("/api/status", headers={"X-CSRFToken": csrf_token(logged_in, "/history?limit=1")}).status_code == 405


# -- API tokens ------------------------------------------------------------------------------------------------
def test_a_token_authenticates_api_calls_and_its_posts_need_no_csrf(client, web_practice):
    auth = {"Authorization": f"Bearer {web_practice.token}"}
    assert client.get("/api/status", headers=auth).get_json()["node"] == "pc-1"
    assert len(client.get("/api/conflicts?all=1", headers=auth).get_json()) == len(SCENARIO) + 1  # and the refusal
    response = client.post(f"/api/conflicts/{cid(web_practice, 4)}/resolve", json={"keep": "local"}, headers=auth)
    assert response.status_code == 200
    assert response.get_json()["resolved_by"] == USER
    assert local_row(web_practice, 4)["phone"] == "local 4"


@pytest.mark.parametrize("header", ["Bearer ccsync_wrong", "Bearer ", "Basic dXNlcjpwYXNz", "ccsync_token",
                                    "Bearer not-even-prefixed"])
def test_a_wrong_token_is_401_even_with_a_session(logged_in, header):
    assert logged_in.get("/api/status").status_code == 200
    response = logged_in.get("/api/status", headers={"Authorization": header})
    assert response.status_code == 401


# -- Sumehr --------------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_publisher(monkeypatch):
    calls = []
    rows = [
        {"patient": "85010100001", "name": "Anne <i>Peeters</i>", "latest_version": 3, "hub_version": 2,
         "state": "failing", "reason": "HUB error: <b>boom</b>", "since": "2025-01-02T03:04:05+00:00", "attempts": 4,
         "last_attempt": "2025-01-02T03:10:00+00:00", "next_attempt": "2025-01-02T03:20:00+00:00",
         "hub_transaction_id": None},
        {"patient": "85010100002", "name": None, "latest_version": 1, "hub_version": None, "state": "waiting",
         "reason": "offline", "since": "2025-01-02T03:04:05+00:00", "attempts": 0, "last_attempt": None,
         "next_attempt": None, "hub_transaction_id": None},
    ]
    ok = {"patient": "85010100003", "name": None, "latest_version": 1, "hub_version": 1, "state": "up_to_date",
          "reason": None, "since": None, "attempts": 0, "last_attempt": None, "next_attempt": None,
          "hub_transaction_id": "t1"}
    seen = {}

    def listing(conn, settings, *, show="all", search=None, sort="patient", limit=None, offset=0):
        assert isinstance(settings, Settings)
        seen.update(show=show, search=search, sort=sort, limit=limit, offset=offset)
        everyone = [dict(r) for r in rows] + [dict(ok)]
        shown = {"all": everyone, "not_up_to_date": everyone[:2], "attention": everyone[:1],
                 "waiting": everyone[1:2]}[show]
        counts = {"invalid": 0, "failing": 1, "waiting": 1, "up_to_date": 1, "no_consent": 0}
        return types.SimpleNamespace(rows=shown[offset:offset + limit if limit else None], total=len(shown),
                                     counts=counts)

    def retry(conn, settings, patient=None):
        calls.append(patient)
        return 1

    module = types.SimpleNamespace(listing=listing, retry=retry, configured=lambda settings: True, seen=seen)
    monkeypatch.setitem(sys.modules, "reconciler.sumehr.publisher", module)
    return calls


def test_sumehr_page_lists_the_patients_to_look_at_and_waiting_apart_and_retry_now_works(logged_in, fake_publisher):
    page = html(logged_in.get("/sumehr"))
    assert "85010100001" in page and "85010100002" not in page and "85010100003" not in page
    assert "HUB error: &lt;b&gt;boom&lt;/b&gt;" in page and "<b>boom</b>" not in page
    assert "Anne &lt;i&gt;Peeters&lt;/i&gt;" in page  # the name, escaped
    assert page.count("Retry now</button>") == 1
    assert "85010100002" in html(logged_in.get("/sumehr?show=waiting"))
    assert "85010100003" in html(logged_in.get("/sumehr?all=1"))
    response = logged_in.post("/sumehr/85010100001/retry", data={"csrf_token": csrf_token(logged_in, "/sumehr")})
    assert response.status_code == 302 and fake_publisher == ["85010100001"]
    # the flash names the patient, the name isolated and escaped
    assert "<bdi>Anne &lt;i&gt;Peeters&lt;/i&gt;</bdi>: a new try is asked for now" in html(logged_in.get("/sumehr"))
    assert [r["patient"] for r in logged_in.get("/api/sumehr").get_json()] == ["85010100001", "85010100002"]
    assert len(logged_in.get("/api/sumehr?all=1").get_json()) == 3
    api = logged_in.post("/api/sumehr/85010100002/retry", headers=api_headers(logged_in))
    assert api.status_code == 200 and api.get_json() == {"patient": "85010100002", "retried": 1}


def test_sumehr_page_searches_sorts_and_pages(logged_in, fake_publisher):
    module = sys.modules["reconciler.sumehr.publisher"]
    logged_in.get("/sumehr?show=all&q=%20peeters%20&sort=name&page=1")
    assert module.seen == {"show": "all", "search": "peeters", "sort": "name", "limit": 50, "offset": 0}
    for bad in ("/sumehr?sort=colour", "/sumehr?show=everything", "/sumehr?page=0", "/sumehr?page=x",
                "/api/sumehr?limit=0", "/api/sumehr?sort=x"):
        assert logged_in.get(bad).status_code == 400, bad


def test_sumehr_page_keeps_a_bidi_override_in_a_key_name_or_reason_inside_it(logged_in, fake_publisher, monkeypatch):
    module = sys.modules["reconciler.sumehr.publisher"]
    row = {"patient": "P\u202e12", "name": "\u202eAnne", "latest_version": 1, "hub_version": None, "state": "failing",
           "reason": "HUB \u202erefused", "since": None, "attempts": 1, "last_attempt": None, "next_attempt": None,
           "hub_transaction_id": None}
    counts = {"invalid": 0, "failing": 1, "waiting": 0, "up_to_date": 0, "no_consent": 0}
    monkeypatch.setattr(module, "listing", lambda conn, settings, **options: types.SimpleNamespace(
        rows=[dict(row), dict(row, patient="P13")], total=2, counts=counts), raising=False)
    page = html(logged_in.get("/sumehr"))
    # each isolated (<bdi>): an override turns its own text around, never the rest of the row
    assert '<bdi><code class="patient">P\u202e12</code></bdi>' in page
    assert '<bdi class="name record-label">\u202eAnne</bdi>' in page and "<bdi>HUB \u202erefused</bdi>" in page
    response = logged_in.post("/sumehr/P13/retry", data={"csrf_token": csrf_token(logged_in, "/sumehr")})
    assert response.status_code == 302
    assert "<bdi>\u202eAnne</bdi>: a new try" in html(logged_in.get("/sumehr"))


@pytest.mark.parametrize("lang, words, english", [
    ("fr", ["Les Sumehr sur le HUB", "Réessayer maintenant", "À examiner", "Trier par", "en échec"], "Retry now"),
    ("nl", ["Sumehrs op de HUB", "Nu opnieuw proberen", "Na te kijken", "Sorteren op", "mislukt"], "Retry now"),
])
def test_sumehr_page_speaks_the_readers_language(logged_in, fake_publisher, lang, words, english):
    page = html(logged_in.get("/sumehr", headers={"Accept-Language": lang}))
    assert all(w in page for w in words), [w for w in words if w not in page]
    assert english not in page
    token = csrf_token(logged_in, "/sumehr")
    logged_in.post("/sumehr/85010100001/retry", data={"csrf_token": token}, headers={"Accept-Language": lang})
    flashed = html(logged_in.get("/sumehr", headers={"Accept-Language": lang}))
    assert "a new try is asked for now" not in flashed and "<bdi>Anne &lt;i&gt;Peeters&lt;/i&gt;</bdi>" in flashed


def test_sumehr_page_not_set_up_says_so_in_the_readers_language_with_the_publishers_words(logged_in, fake_publisher,
                                                                                          monkeypatch):
    from reconciler.errors import CcsyncError

    def listing(conn, settings, **options):
        raise CcsyncError("[sumehr] documents_table public.nope does not exist")

    monkeypatch.setattr(sys.modules["reconciler.sumehr.publisher"], "listing", listing)
    page = html(logged_in.get("/sumehr", headers={"Accept-Language": "fr"}))
    assert "La publication des Sumehr n’est pas prête sur ce PC" in page
    assert '<bdi class="reason">[sumehr] documents_table public.nope does not exist</bdi>' in page
    assert logged_in.get("/api/sumehr").status_code == 503


def test_sumehr_page_without_a_hub_says_not_configured(logged_in, fake_publisher, monkeypatch):
    monkeypatch.setattr(sys.modules["reconciler.sumehr.publisher"], "configured", lambda settings: False)
    page = logged_in.get("/sumehr")
    assert page.status_code == 200 and "Sumehr publication not configured" in html(page)
    assert "Retry now</button>" not in html(page)


def test_sumehr_retry_of_an_unknown_patient_is_404_and_without_csrf_400(logged_in, fake_publisher):
    token = csrf_token(logged_in, "/sumehr")
    assert logged_in.post("/sumehr/99999/retry", data={"csrf_token": token}).status_code == 404
    assert logged_in.post("/api/sumehr/99999/retry", headers={"X-CSRFToken": token}).status_code == 404
    assert logged_in.post("/sumehr/85010100001/retry").status_code == 400
    assert fake_publisher == []


def test_sumehr_page_without_a_publisher_is_empty_with_a_note(logged_in, monkeypatch):
    monkeypatch.setitem(sys.modules, "reconciler.sumehr.publisher", None)  # as if the module did not exist
    page = logged_in.get("/sumehr")
    assert page.status_code == 200 and "not part of this version of ccsync" in html(page)
    assert logged_in.get("/api/sumehr").get_json() == []
    response = logged_in.post("/api/sumehr/1/retry", headers={"X-CSRFToken": csrf_token(logged_in, "/history?limit=1")})
    assert response.status_code == 503


def test_sumehr_not_set_up_on_this_pc_says_so_without_a_500(logged_in, web_practice, monkeypatch):
    publisher = pytest.importorskip("reconciler.sumehr.publisher")
    page = logged_in.get("/sumehr")  # no [hub] in this PC's configuration
    assert page.status_code == 200 and "Sumehr publication not configured" in html(page)
    assert logged_in.get("/api/sumehr").status_code == 503
    monkeypatch.setattr(publisher, "configured", lambda settings: True)
    page = logged_in.get("/sumehr")  # a HUB, but this practice has no Sumehr documents table
    assert page.status_code == 200
    assert "not set up on this PC" in html(page)
    assert logged_in.get("/api/sumehr").status_code == 503


# -- how values are shown ---------------------------------------------------------------------------------
def test_logical_times_and_diff_paths_read_for_people():
    from datetime import datetime, timezone

    from reconciler.conflicts import diff
    from web import present

    ms = int(datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc).timestamp() * 1000)
    with create_app({"LOCAL_DSN": "dbname=x", "SECRET_KEY": SECRET}).test_request_context():
        assert present.hlc((ms << 16) + 2) == "2025-01-02 04:04:05.678 +2"  # Europe/Brussels, the default zone
        assert present.hlc(ms << 16).endswith(":05.678")
    stored = json.loads(diff(json.dumps({"it's": 1, "tags": [1, 2], "same": 0}),
                             json.dumps({"it's": 3, "tags": [1, 3], "same": 0, "new": 1})))
    assert present.diff_columns(stored, ["it's", "tags", "same", "new", "tag"]) == {"it's", "tags", "new"}
    assert present.cell(None) == "NULL" and present.cell(True) == "true" and present.cell({"a": [1]}) == '{"a": [1]}'
    assert present.pk({"id": 1, "code": "x"}) == "id=1, code=x"


# -- errors never show internals ----------------------------------------------------------------------------
def test_an_unexpected_error_is_a_plain_500_page_without_details(logged_in, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("host=db.example password=hunter2 went wrong")

    monkeypatch.setattr(engine_status, "current", boom)
    for path in ("/", "/api/status"):
        response = logged_in.get(path)
        assert response.status_code == 500
        body = html(response)
        assert "hunter2" not in body and "Traceback" not in body and "RuntimeError" not in body
        assert "the details are in the panel" in body


def _told_by_the_database(error: CcsyncError) -> CcsyncError:
    """`error` as reconciler.db raises it: translated from psycopg's error, which is its __cause__."""
    error.__cause__ = psycopg.errors.RaiseException("the server's words, naming host=db.example user=doctor")
    return error


@pytest.mark.parametrize("unusable", [
    Unreachable("cannot connect to the local database: host=db.example user=doctor"),
    Refused("the local database refused the connection: user=doctor"),
    NotAllowed("this PC's database refused role 'doctor': permission denied for table ccsync.state"),
    InvalidDsn("invalid local database DSN: not a PostgreSQL connection string or URI"),
], ids=lambda e: type(e).__name__)
def test_a_database_that_cannot_be_used_is_503_by_its_type_with_the_panels_words(logged_in, monkeypatch, unusable):
    def failing(*args, **kwargs):
        raise unusable

    monkeypatch.setattr(engine_status, "current", failing)
    for path in ("/", "/api/status"):
        response = logged_in.get(path)
        assert response.status_code == 503, path
        assert "cannot be reached" in html(response) and "doctor" not in html(response)


def test_a_ccsync_refusal_that_the_database_raised_is_its_own_line_not_an_outage(logged_in, monkeypatch):
    def refusing(*args, **kwargs):
        raise _told_by_the_database(CcsyncError("public.visits is not tracked on the cloud"))

    monkeypatch.setattr(engine_status, "current", refusing)
    response = logged_in.get("/api/status")
    assert response.status_code == 400
    assert response.get_json()["error"] == "public.visits is not tracked on the cloud"


def test_sumehr_tells_a_database_that_cannot_be_used_from_a_publisher_not_set_up(logged_in, fake_publisher,
                                                                                 monkeypatch):
    module = sys.modules["reconciler.sumehr.publisher"]
    listing = module.listing

    def not_allowed(conn, settings, **options):
        raise NotAllowed("this PC's database refused role 'doctor': permission denied for table public.sumehrs")

    monkeypatch.setattr(module, "listing", not_allowed)
    response = logged_in.get("/api/sumehr")
    assert response.status_code == 503 and "cannot be reached" in response.get_json()["error"]
    assert "doctor" not in response.get_data(as_text=True)

    def cloud_says_no(conn, settings, patient=None):
        raise _told_by_the_database(CcsyncError("the role nurse_pc is registered to no node"))

    monkeypatch.setattr(module, "listing", listing)
    monkeypatch.setattr(module, "retry", cloud_says_no)
    token = csrf_token(logged_in, "/sumehr")
    response = logged_in.post("/api/sumehr/85010100001/retry", headers={"X-CSRFToken": token})
    assert response.status_code == 503
    assert response.get_json()["error"] == "the role nurse_pc is registered to no node"


@pytest.mark.parametrize("dsn", ["host=127.0.0.1 port=1 dbname=practice user=doctor password=hunter2 connect_timeout=1",
                                 "host=127.0.0.1 user=doctor password=hunter2 = not a DSN"], ids=["unreachable", "invalid"])
def test_an_unreachable_database_is_503_without_dsn_or_password(dsn):
    app = create_app({"LOCAL_DSN": dsn, "SECRET_KEY": SECRET})
    client = app.test_client()
    for path in ("/auth/login", "/api/status"):
        response = client.get(path, headers={"Authorization": "Bearer ccsync_x"} if "/api/" in path else {})
        assert response.status_code == 503
        body = html(response)
        assert "hunter2" not in body and "port=1" not in body and "doctor" not in body
        assert "cannot be reached" in body


def test_the_app_refuses_to_start_without_a_secret_or_a_local_database():
    with pytest.raises(CcsyncError, match="secret key"):
        create_app({"LOCAL_DSN": "dbname=x"})
    with pytest.raises(CcsyncError, match="secret key"):
        create_app({"LOCAL_DSN": "dbname=x", "SECRET_KEY": "short"})
    with pytest.raises(CcsyncError, match="no local database"):
        create_app({"SECRET_KEY": SECRET})


def test_secret_key_from_env_then_toml_then_a_0600_file_in_the_users_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    settings = Settings(local="dbname=x")
    first, where = secret_key(settings, "pc-1", environ={})
    path = tmp_path / "config" / "ccsync" / "panel-pc-1.secret"
    assert where.startswith(str(path)) and len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secret_key(settings, "pc-1", environ={}) == (first, str(path))
    assert secret_key(settings, "pc-2", environ={})[0] != first  # one per node: sessions do not cross panels
    assert secret_key(Settings(extra={"panel": {"secret_key": "from the toml file"}}), "pc-1", environ={})[0] == \
        "from the toml file"
    assert secret_key(settings, "pc-1", environ={"CCSYNC_PANEL_SECRET": "from the environment"})[0] == \
        "from the environment"
    path.chmod(0o644)
    with pytest.raises(CcsyncError, match="chmod 600"):
        secret_key(settings, "pc-1", environ={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]  # nothing in the working directory


def test_a_panel_that_cannot_start_writes_no_secret_anywhere(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "CCSYNC_LOCAL_DSN": "host=127.0.0.1 port=1"}
    env.pop("CCSYNC_PANEL_SECRET", None)
    env.pop("CCSYNC_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "panel", "--port", str(free_port())],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot connect to the local database" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# -- the command line ------------------------------------------------------------------------------------------
def test_panel_user_add_reads_stdin_and_prints_a_token_once(web_practice, client):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["panel-user", "add", "script", "--local", web_practice.local, "--token"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("ccsync_") and len(token.splitlines()) == 1
    with psycopg.connect(web_practice.local) as conn:
        stored = conn.execute("select password_hash, api_token_hash from ccsync.panel_users where name = 'script'"
                              ).fetchone()
    assert token not in stored and "a long enough password" not in stored[0]
    assert client.get("/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert log_in(client, "script", "a long enough password").status_code == 302

    again = runner.invoke(cli.main, ["panel-user", "add", "script", "--local", web_practice.local], input="x" * 10)
    assert again.exit_code == 1 and "exists" in again.output
    short = runner.invoke(cli.main, ["panel-user", "add", "other", "--local", web_practice.local], input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output

    new = runner.invoke(cli.main, ["panel-user", "token", "script", "--local", web_practice.local])
    assert new.exit_code == 0
    assert client.get("/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    listed = json.loads(runner.invoke(cli.main, ["panel-user", "list", "--local", web_practice.local, "--json"]).stdout)
    assert {"name": "script", "has_token": True}.items() <= next(u for u in listed if u["name"] == "script").items()
    assert runner.invoke(cli.main, ["panel-user", "remove", "script", "--local", web_practice.local]).exit_code == 0
    gone = runner.invoke(cli.main, ["panel-user", "remove", "script", "--local", web_practice.local])
    assert gone.exit_code == 1 and "no panel user 'script'" in gone.output


def test_ccsync_panel_serves_with_waitress_on_127_0_0_1(web_practice):
    port = free_port()
    env = {**os.environ, "CCSYNC_LOCAL_DSN": web_practice.local, "CCSYNC_CLOUD_DSN": web_practice.cloud,
           "CCSYNC_PANEL_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "panel", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=5) as response:
                    assert response.status == 200
                    assert response.headers["Server"] == "ccsync panel"  # waitress, not Werkzeug's dev server
                    assert "Log in" in response.read().decode()
                break
            except urllib.error.URLError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the panel did not start"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}/" in out
    assert web_practice.local not in out + err and "Traceback" not in err


def test_the_publishers_everyday_reasons_are_shown_in_the_readers_language():
    """Each reason as reconciler/sumehr writes it (not a copy of its words): translated, its values kept."""
    import requests

    from reconciler.sumehr import hub, kmehr, state
    from web.sumehr import reason_words

    cfg = hub.HubConfig(endpoint="https://hub.example.be/hubservices/v3")
    fault = (f'<s:Envelope xmlns:s="{hub.SOAP_NS}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
             "<faultstring>unknown patient</faultstring></s:Fault></s:Body></s:Envelope>").encode()
    doc = kmehr.build_sumehr("85010100002", "Marc", "Janssens", "1985-01-01", "male", 1)
    reasons = {
        state.OFFLINE_REASON: "Hors ligne",
        hub._read_answer(503, b"", "r1").reason: "HTTP 503",
        hub._read_answer(500, fault, "r1").reason: "Le HUB a refusé le Sumehr",
        hub._network_reason(cfg, requests.ConnectTimeout()): "hub.example.be",
        hub._network_reason(cfg, requests.ReadTimeout("Read timed out. (read timeout=30)")): "30 s",
        hub._network_reason(cfg, requests.ConnectionError("[Errno 111] Connection refused")): "Connection refused",
        hub._network_reason(cfg, requests.exceptions.SSLError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")): "certificat",
        kmehr.validate_sumehr(doc, "85010100001")[0]: "un autre patient",
        kmehr.validate_sumehr(doc, "12")[0]: "NISS valide",
    }
    with create_app({"LOCAL_DSN": "dbname=x", "SECRET_KEY": SECRET}).test_request_context(
            headers={"Accept-Language": "fr"}):
        for reason, part in reasons.items():
            words = reason_words(reason)
            assert words != reason and part in words, (reason, words)
        assert reason_words("the HUB said something new") == "the HUB said something new"  # else as written
        assert reason_words(None) is None


# -- every reason the Sumehr publisher can store, found in its code (not a copy of its words) ----------------
SUMEHR_CODE = Path(__file__).resolve().parents[2] / "reconciler" / "sumehr"
# what a placeholder of a reason holds, where the code builds it from a few known words (else a number: "7")
PLACEHOLDERS = {"tag": ["date", "time"], "word": ["complete", "validated"], "flag": ["iscomplete", "isvalidated"]}


def _sumehr_texts(node, samples: dict) -> list[str]:
    """The texts a string expression of the publisher's code can take, its placeholders filled with samples."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _sumehr_texts(node.body, samples) + _sumehr_texts(node.orelse, samples)
    if isinstance(node, ast.JoinedStr):  # one value per placeholder in each text, however often it is named
        sources = list(dict.fromkeys(ast.unparse(p.value) for p in node.values if not isinstance(p, ast.Constant)))
        values = {src: samples.get(src) or _sumehr_texts(ast.parse(src, mode="eval").body, samples) or ["7"]
                  for src in sources}
        return ["".join(p.value if isinstance(p, ast.Constant) else chosen[sources.index(ast.unparse(p.value))]
                        for p in node.values) for chosen in itertools.product(*values.values())]
    return []


def sumehr_reasons() -> set[str]:
    """Every text the publisher stores as a reason: what hub.py fails with (_failed, _HookFailed, the network's
    and the acknowledgement's words), the problems kmehr.py and state.py find in a document, and state.py's
    sentences; xmlsafe.py's words for an unreadable document fill kmehr.py's."""
    trees = {p.name: ast.parse(p.read_text(encoding="utf-8")) for p in SUMEHR_CODE.glob("*.py")}
    samples = dict(PLACEHOLDERS)
    xmlsafe = trees["xmlsafe.py"]
    assigned = {t.id: n.value for n in ast.walk(xmlsafe) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    samples["exc.human"] = [t for node in ast.walk(xmlsafe) if isinstance(node, ast.Call)
                            and getattr(node.func, "id", None) == "XmlRejected"
                            for t in _sumehr_texts(assigned.get(getattr(node.args[1], "id", None), node.args[1]), {})]
    samples["what"] = [node.args[1].value for node in ast.walk(trees["kmehr.py"]) if isinstance(node, ast.Call)
                       and getattr(node.func, "id", None) == "_moment_problems" and isinstance(node.args[1], ast.Constant)]
    assert samples["exc.human"] and samples["what"], "the publisher's code changed shape: teach this test where to look"
    found = set()
    for name, tree in trees.items():
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(fn):
                exprs = []
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("_failed", "_HookFailed", "PutResult"):
                    exprs = node.args[:1] if getattr(node.func, "id") != "PutResult" else node.args[3:4]
                elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "append" \
                        and getattr(node.func.value, "id", None) == "problems":
                    exprs = node.args
                elif isinstance(node, (ast.Return, ast.Assign)) and isinstance(node.value, ast.List) and (
                        isinstance(node, ast.Return) or any(getattr(t, "id", None) == "problems" for t in node.targets)):
                    exprs = node.value.elts
                elif isinstance(node, ast.Return) and fn.name == "_network_reason":
                    exprs = [node.value]
                for expr in exprs:
                    found.update(_sumehr_texts(expr, samples))
        if name == "state.py":  # its sentences (LEGACY_INVALID is a prefix older revisions wrote, not a reason)
            found.update(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                         and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                         and node.targets[0].id != "LEGACY_INVALID")
            found.update(t for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp)
                         for t in [ast.literal_eval(node.value)])
    return {t for t in found if t and " " in t}


def test_every_reason_the_sumehr_publisher_can_store_reads_in_french_and_dutch():
    """Each reason found in reconciler/sumehr's code (so a new one cannot be forgotten), in each language: translated,
    its values kept; the problems of an invalid document, joined by "; ", each translated."""
    from web.sumehr import reason_words

    reasons = sumehr_reasons()
    assert len(reasons) >= 40 and "HUB answered HTTP 7" in reasons and "the Sumehr has no author" in reasons
    app = create_app({"LOCAL_DSN": "dbname=x", "SECRET_KEY": SECRET})
    for lang in ("fr", "nl"):
        with app.test_request_context(headers={"Accept-Language": lang}):
            for reason in sorted(reasons):
                words = reason_words(reason)
                assert words != reason and not words.startswith(reason[:12]), (lang, reason, words)
                assert all(n in words for n in re.findall(r"\d+", reason)), (lang, reason, words)
            joined = "the Sumehr has no author; the document's patient has no INSS"
            assert "; " not in reason_words(joined) and reason_words(joined) != joined
            assert reason_words("the HUB said something new") == "the HUB said something new"  # else as written
            assert reason_words(None) is None
