"""What people read: their language, times in the practice's zone, records named by their label (panel, CLI and
JSON), history that a person can use, and CLI output that prints unicode, wraps and shows the base."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import cli
import reconciler
from reconciler import history, labels, sync
from reconciler.errors import CcsyncError
from tests.fix_sync import on_node
from tests.fix_web import HOSTILE, SECRET, app, client, logged_in, session_cookie, web_practice  # noqa: F401
from web import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import translations  # noqa: E402

pytestmark = pytest.mark.one_version


def html(response) -> str:
    return response.get_data(as_text=True)


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


# -- languages ---------------------------------------------------------------------------------------------
def test_every_string_of_the_panel_is_translated_and_compiled():
    assert translations.problems() == []


@pytest.mark.parametrize("accept, expected", [("fr-BE,fr;q=0.9", "Conflits"), ("nl-BE,nl;q=0.9", "Conflicten"),
                                              ("de-DE", "Conflicts"), ("en-GB", "Conflicts")])
def test_the_browser_language_is_used(logged_in, accept, expected):
    page = html(logged_in.get("/conflicts", headers={"Accept-Language": accept}))
    assert f"<h1>{expected}</h1>" in page


def test_the_chosen_language_is_remembered_over_the_browsers(logged_in):
    response = logged_in.get("/lang/nl?next=/history", headers={"Accept-Language": "fr"})
    assert response.status_code == 302 and response.headers["Location"] == "/history"
    assert "ccsync_lang=nl" in response.headers["Set-Cookie"]
    page = html(logged_in.get("/history", headers={"Accept-Language": "fr"}))
    assert '<html lang="nl">' in page and "Synchronisatiegeschiedenis" in page
    assert logged_in.get("/lang/xx?next=//evil.example").headers["Location"] == "/"


def test_the_login_page_speaks_the_browsers_language(client):
    page = html(client.get("/auth/login", headers={"Accept-Language": "fr"}))
    assert "Se connecter" in page and "Mot de passe" in page


def test_times_are_in_the_practices_zone_with_the_zone_named(logged_in, web_practice):
    page = html(logged_in.get("/history?kind=init", headers={"Accept-Language": "en"}))
    assert "+0100" in page or "+0200" in page  # Europe/Brussels, the default, whatever this machine's zone
    result = run("history", "--local", web_practice.local, "--kind", "init")
    assert " CET " in result.stdout or " CEST " in result.stdout


# -- labels -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def labelled(web_practice):
    cloud = web_practice.cloud_owner
    labels.set_label(cloud, "patients", "name || coalesce(' · ' || phone, '')")
    labels.set_label(cloud, "encounters", "(select p.name from public.patients p where p.id = patient_id)")
    sync.sync(web_practice.settings())
    return web_practice


def test_a_label_reaches_the_pc_and_names_its_conflicts_everywhere(labelled, logged_in):
    wp = labelled
    listed = {c["id"]: c for c in logged_in.get("/api/conflicts").get_json()}
    assert listed[wp.conflicts[2]]["label"] == "Patient 2 · cloud 2"
    page = html(logged_in.get("/conflicts"))
    assert '<bdi class="record-label">Patient 2 · cloud 2</bdi>' in page
    assert HOSTILE not in page
    detail = html(logged_in.get(f"/conflicts/{wp.conflicts[7]}"))  # deleted on the cloud: named from this PC's row
    assert "Patient 7 · local 7" in detail
    shown = run("conflicts", "list", "--local", wp.local)
    assert "Patient 2 · cloud 2 (public.patients id=2)" in shown.stdout
    doc = json.loads(run("conflicts", "show", str(wp.conflicts[2]), "--local", wp.local, "--json").stdout)
    assert doc["label"] == "Patient 2 · cloud 2"


def test_labels_follow_a_foreign_key_and_name_rows_by_their_key(labelled):
    with psycopg.connect(labelled.local, autocommit=True) as conn:
        conn.execute("insert into encounters (id, patient_id, summary) values (500, 3, 'x')")
        got = labels.for_keys(conn, "public.encounters", [{"id": 500}, {"id": 404}])
        assert got == ["Patient 3", None]
        assert labels.for_images(conn, "public.encounters", [{"id": 1, "patient_id": 4}]) == ["Patient 4"]
        conn.execute("delete from encounters where id = 500")
        conn.execute("delete from ccsync.journal where table_name = 'public.encounters'")


def test_a_label_is_checked_when_set_and_can_never_write(labelled):
    with pytest.raises(CcsyncError):  # only the schema owner writes labels: not the application, not a PC
        labels.set_label(labelled.cloud, "patients", "name")
    with pytest.raises(CcsyncError, match="the label does not work on public.patients"):
        labels.set_label(labelled.cloud_owner, "patients", "nonsense +")
    with pytest.raises(CcsyncError, match="has no column 'nope'"):
        labels.set_label(labelled.cloud_owner, "patients", columns=["name", "nope"])
    assert labels.set_label(labelled.cloud_owner, "patients", columns=["name", "phone"])["label"] == \
        'concat_ws(\' \', "r"."name", "r"."phone")'
    labels.set_label(labelled.cloud_owner, "patients", "name || coalesce(' · ' || phone, '')")
    # a label that would write (set by the PC's database owner, the only other authority): refused, unnamed
    with psycopg.connect(labelled.local, autocommit=True) as conn:
        conn.execute("create table scratch (v text)")
        conn.execute("create function cc_writes() returns text language sql as "
                     "$$ insert into scratch values ('written'); select 'x' $$")
        conn.execute("update ccsync.tracked set label = 'cc_writes()' where table_name = 'public.encounters'")
        try:
            assert labels.for_images(conn, "public.encounters", [{"id": 1, "patient_id": 1}]) == [None]
            assert conn.execute("select count(*) from scratch").fetchone()[0] == 0
        finally:
            conn.execute("update ccsync.tracked set label = null where table_name = 'public.encounters'")
            conn.execute("drop function cc_writes()")
            conn.execute("drop table scratch")


def test_ccsync_label_command(labelled):
    result = run("label", "--dsn", labelled.cloud_owner, "encounters", "--columns", "summary", "--json")
    assert json.loads(result.stdout)["label"] == 'concat_ws(\' \', "r"."summary")'
    bad = CliRunner().invoke(cli.main, ["label", "--dsn", labelled.cloud_owner, "encounters"])
    assert bad.exit_code == 1 and "give an SQL expression" in bad.output
    tables = json.loads(run("tables", "--dsn", labelled.cloud_owner, "--json").stdout)
    assert {t["table"]: t["label"] for t in tables}["public.encounters"] == 'concat_ws(\' \', "r"."summary")'
    run("label", "--dsn", labelled.cloud_owner, "encounters", "(select p.name from public.patients p where p.id = patient_id)")


# -- the CLI's output -------------------------------------------------------------------------------------------
def test_conflicts_show_prints_unicode_as_is_wraps_long_values_and_shows_the_base(web_practice):
    long = "Chloé " + "très long commentaire " * 12
    cid = web_practice.conflicts[10]
    with psycopg.connect(web_practice.local, autocommit=True) as conn:
        conn.execute("update ccsync.conflicts set local_row = jsonb_set(local_row, '{notes}', to_jsonb(%s::text)) "
                     "where id = %s", (long, cid))
    out = run("conflicts", "show", str(cid), "--local", web_practice.local).stdout
    assert "Chloé" in out and "\\u00e9" not in out
    assert "base 10" in out  # the base column
    words = " ".join(out.split())
    assert "commentaire très long commentaire" in words and words.count("commentaire") == 12  # wrapped, not cut
    assert "\\u00e9" not in run("conflicts", "show", str(cid), "--local", web_practice.local, "--json").stdout


def test_status_prints_the_light_the_service_and_zoned_times(web_practice):
    out = run("status", "--local", web_practice.local, "--cloud", web_practice.cloud).stdout
    assert "▲ attention needed" in out and "sync service (ccsync run): not running" in out
    assert "the application uses the cloud database" in out
    assert " CET" in out or " CEST" in out


# -- history --------------------------------------------------------------------------------------------------
def test_history_filters_pages_and_the_same_defaults_in_panel_and_cli(web_practice, logged_in):
    assert history.DEFAULT_LIMIT == 20
    with psycopg.connect(web_practice.local, autocommit=True) as conn:
        conn.execute("insert into ccsync.history (direction, changes, error, reason) "
                     "select 'pull', 1, case when g % 5 = 0 then 'boom' end, case when g % 5 = 0 then 'sync_error' end "
                     "from generate_series(1, 45) g")
    api = logged_in.get("/api/history").get_json()
    cli_rows = json.loads(run("history", "--local", web_practice.local, "--json").stdout)
    assert len(api) == len(cli_rows) == 20 and [r["id"] for r in api] == [r["id"] for r in cli_rows]
    errors = logged_in.get("/api/history?errors=1&limit=100").get_json()
    assert len(errors) == 9 and all(r["error"] for r in errors)
    older = logged_in.get(f"/api/history?before={api[-1]['id']}").get_json()
    assert older[0]["id"] < api[-1]["id"] and not {r["id"] for r in older} & {r["id"] for r in api}
    assert {r["direction"] for r in logged_in.get("/api/history?kind=init").get_json()} == {"init"}
    page = html(logged_in.get(f"/history?kind=pull&errors=1&before={api[0]['id']}"))
    assert 'id="older"' not in page and "failed" in page
    assert logged_in.get("/history?kind=nope").status_code == 400
    assert logged_in.get("/api/history?errors=yes").status_code == 400


def test_routine_runs_fold_into_one_row(make_practice):
    p = make_practice()
    before = len(on_node(p.nodes["pc-1"], history.history, 100))
    for i in range(3):
        p.sql(p.cloud, "insert into patients (id, name) values (%s, 'x')", (100 + i,))
        sync.pull(p.settings("pc-1"))
    rows = on_node(p.nodes["pc-1"], history.history, 100)
    assert len(rows) == before + 1
    assert (rows[0]["direction"], rows[0]["runs"], rows[0]["changes"]) == ("pull", 3, 3)


def test_a_failed_run_stores_a_sentence_not_the_raw_error(make_practice):
    p = make_practice()
    gone = p.settings("pc-1")
    gone.cloud = "host=127.0.0.1 port=1 dbname=x user=u connect_timeout=1"
    with pytest.raises(reconciler.CcsyncError):
        sync.push(gone)
    row = on_node(p.nodes["pc-1"], history.history, 1)[0]
    assert row["reason"] == "cloud_unreachable"
    assert row["error"].startswith("the cloud cannot be reached") and "port=1" not in row["error"]
