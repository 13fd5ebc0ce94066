"""The panel end to end in headless Chromium (Playwright) against real servers: a cloud on a server of its own
(so it can be stopped), a PC running `ccsync run`, `ccsync panel` served by waitress, the HUB simulator.

Screenshots of every page go to test-artifacts/panel/; with CCSYNC_SCREENSHOTS=docs they are also copied
to docs/screenshots/ for the README (in French, one in Dutch). Every page is checked at 390 px (a phone) and
1,366 px (a laptop) for horizontal overflow, and in French and Dutch for strings left in English.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

import reconciler
from reconciler import status, sync
from reconciler.config import Settings
from reconciler.devtools.pgserver import PgServer, free_port
from reconciler import panel_users as users
from tests.fix_pg import Databases
from tests.fix_sync import deployment_cloud, deployment_pc, on_node, wait_for

pytestmark = pytest.mark.one_version  # behaviour that does not depend on the PostgreSQL version

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "panel"
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM = Path(os.environ.get("CCSYNC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
HAS_SUMEHR = importlib.util.find_spec("reconciler.sumehr.publisher") is not None

USER, PASSWORD = "Dr Peeters", "a panel password for the browser"
# a value longer than a phone's screen, without a space to wrap at
LONG_NOTE = "Allergie-pénicilline-documentée-par-le-Dr-Peeters-lors-de-la-consultation-du-14-mars-" * 2
LOCAL_PHONE, CLOUD_PHONE = "0470 11 22 33 (modifié sur le PC)", "0470 99 88 77 (modifié sur le cloud)"
SCHEMA = """
create table patients (
    id          int primary key,
    name        text not null,
    phone       text,
    notes       text,
    inss        text,
    hub_consent boolean not null default false
);
create table visits (
    id         int primary key,
    patient_id int not null references patients (id),
    summary    text
);
create table sumehr_documents (
    patient_id int not null references patients (id),
    version    int not null,
    kmehr      text not null,
    created_at timestamptz not null default now(),
    primary key (patient_id, version)
);
"""


def one(dsn: str, query: str, params=None):
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(query, params).fetchone()[0]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the light's first poll land
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")
    if os.environ.get("CCSYNC_SCREENSHOTS") == "docs":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / f"{name}.png", DOCS / f"{name}.png")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: `apt-get install chromium` to run the panel's browser tests "
                    "(Playwright drives Debian's Chromium; no browser download)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Stack:
    """Every process of a PC of the practice, and the cloud's own server."""

    def __init__(self, pg, tmp: Path):
        from reconciler.devtools.hubsim import SOAP_PATH, start_in_thread

        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.hub_url, self.hub, self._stop_hub = start_in_thread(port=0)
        self.hub.down()  # the HUB is out: the first publication fails
        self.server = PgServer(tmp / "cloud", bindir=pg.bindir, settings={"fsync": "off"}).init().start()
        seed = ("insert into patients (id, name, phone, inss, hub_consent) values "
                "(1, 'Anna Peeters', '0470 00 00 00', '85010100001', false), "
                "(2, 'Marc Janssens', '0486 12 34 56', '85010100002', true), "
                "(3, 'Chloé Vandenbroucke-Dewaele', '0499 00 00 03', '85010100003', false), "
                "(4, 'Lucas Martin', '0471 00 00 04', '85010100004', false);")
        self.cloud_db = deployment_cloud(Databases(self.server), SCHEMA + seed,
                                         ["patients", "visits", "sumehr_documents"])
        self.cloud = self.cloud_db.app  # the practice application, online
        reconciler.labels.set_label(self.cloud_db.owner, "patients", "name")
        reconciler.labels.set_label(self.cloud_db.owner, "sumehr_documents",
                                    "(select p.name from public.patients p where p.id = patient_id) || ' v' || version")
        self.local_dbs = Databases(pg)
        pc = deployment_pc(self.local_dbs, self.cloud_db, "pc-1", init=False, label="e2e_pc1")
        self.local = pc.local
        config = tmp / "ccsync.toml"
        config.write_text(f'[hub]\nendpoint = "{self.hub_url}{SOAP_PATH}"\nconnect_timeout = 2\nread_timeout = 5\n'
                          "[sumehr]\ninterval_seconds = 1\n")
        self.settings = pc.settings()
        sync.init(self.settings)
        users.add(self.local, USER, PASSWORD)
        # the same record changed on both sides while they could not see each other
        with psycopg.connect(self.local, autocommit=True) as c:
            c.execute("update patients set phone = %s where id = 1", (LOCAL_PHONE,))
            c.execute("update patients set notes = %s where id = 3", (LONG_NOTE + " (PC)",))
            c.execute("insert into visits (id, patient_id, summary) values (41, 4, 'contrôle annuel')")
        with psycopg.connect(self.cloud, autocommit=True) as c:
            c.execute("update patients set phone = %s where id = 1", (CLOUD_PHONE,))
            c.execute("update patients set notes = %s where id = 3", (LONG_NOTE + " (cloud)",))
            c.execute("delete from patients where id = 4")  # the PC's visit of this patient is refused
            if HAS_SUMEHR:
                from reconciler.sumehr.kmehr import build_sumehr

                doc = build_sumehr("85010100002", "Marc", "Janssens", "1985-01-01", "male", 1).decode()
                c.execute("insert into sumehr_documents (patient_id, version, kmehr) values (2, 1, %s)", (doc,))
        self.env = {**os.environ, "CCSYNC_LOCAL_DSN": self.local, "CCSYNC_CLOUD_DSN": pc.cloud,
                    "CCSYNC_CONFIG": str(config), "CCSYNC_PANEL_SECRET": "an end-to-end secret of some length"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        proc.log = log
        self.procs.append(proc)

    def status(self) -> dict:
        return status.current(self.settings)

    def panel_answers(self) -> bool:
        for proc in self.procs:
            assert proc.poll() is None, f"{proc.args[3:]} exited: see its log above"
        try:
            with urllib.request.urlopen(self.url + "/auth/login", timeout=3) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.log.close()
        self._stop_hub()
        self.server.stop("immediate")


@pytest.fixture(scope="module")
def stack(browser, pg, tmp_path_factory):
    s = Stack(pg, tmp_path_factory.mktemp("e2e"))
    try:
        s.start("service", "run", "--max-backoff", "0.5")
        s.start("panel", "panel", "--port", str(s.port))
        wait_for(lambda: s.status()["service"] and s.status()["mode"] == "online", 60, "the service online")
        wait_for(lambda: one(s.local, "select count(*) from ccsync.conflicts where status = 'open'") == 3, 30,
                 "the conflicts and the refused visit on the PC")
        wait_for(s.panel_answers, 60, "the panel")
        yield s
    finally:
        s.stop()
        for name in ("service", "panel"):
            print(f"--- {name} log ---\n" + (s.tmp / f"{name}.log").read_text(errors="replace")[-4000:])
        s.local_dbs.drop_all()



@pytest.fixture(scope="module")
def context(browser, stack):
    """One browser context for the module, in French (the practice's language), logged in once."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 820}, locale="fr-BE",
                              extra_http_headers={"Accept-Language": "fr-BE,fr;q=0.9"})
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(context):
    p = context.new_page()
    yield p
    p.close()


def light(page):
    return page.locator("#status-light [data-field=word]")


def overflow(page) -> int:
    """How many pixels the page is wider than the window, or a table wider than its box (0: nothing to scroll
    sideways, not even a table's last column hidden behind its own scroll bar)."""
    return page.evaluate("""() => Math.max(
        Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth,
        ...[...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth))""")


# English words a French or Dutch page never holds (data is left out: values, labels, codes, times)
ENGLISH = re.compile(r"\b(the|with|this|which|your|when|waiting|changes|nothing|cannot|decide)\b", re.I)


def visible_words(page) -> str:
    return page.evaluate("""() => {
        const body = document.body.cloneNode(true);
        body.querySelectorAll('bdi, code, .val, time, .mono, .reason, script, template, .langs').forEach(e => e.remove());
        return body.innerText;
    }""")


def untranslated(page, lang: str) -> list[str]:
    """The panel's English strings (of more than one word) found on the page, and English words."""
    text = " ".join(visible_words(page).split())
    found = [m for m in english_strings(lang) if m in text]
    found += [w for w in ENGLISH.findall(text)]
    return found


def english_strings(lang: str) -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    import translations

    catalog = translations.load(lang)
    return [m.id for m in catalog if m.id and " " in m.id and "%(" not in m.id and m.string != m.id]


def test_log_in_and_see_the_status_light(page, stack):
    from playwright.sync_api import expect

    page.goto(stack.url + "/conflicts")
    expect(page).to_have_url(f"{stack.url}/auth/login?next=/conflicts")
    expect(page.locator("h1")).to_have_text("ccsync")
    expect(page.locator("button[type=submit]")).to_have_text("Se connecter")
    shot(page, "login")
    page.fill("#name", USER)
    page.fill("#password", "pas le mot de passe")
    page.click("button[type=submit]")
    expect(page.locator(".flash-error")).to_have_text("Nom ou mot de passe incorrect.")
    page.fill("#name", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.url}/conflicts")
    page.goto(stack.url + "/")
    expect(light(page)).to_have_text("En ligne")
    expect(page.locator("#status-light [data-light]")).to_have_attribute("data-mode", "online")
    expect(page.locator(".userbox .username")).to_have_text(USER)
    shot(page, "status-online")


def test_the_light_goes_offline_with_its_reason_when_the_cloud_stops_and_online_again(page, stack):
    from playwright.sync_api import expect

    page.goto(stack.url + "/")
    expect(light(page)).to_have_text("En ligne")
    stack.server.stop("immediate")
    try:
        # no reload: the page polls /api/status
        expect(light(page)).to_have_text("Hors ligne", timeout=45_000)
        expect(page.locator("#status-light [data-light]")).to_have_attribute("data-mode", "offline")
        expect(page.locator(".hero [data-field=reason]")).to_contain_text("Le cloud est injoignable")
        expect(page.locator(".hero [data-field=since]")).to_contain_text("Passé hors ligne")
        expect(page.locator(".cards [data-field=pending_pull]")).to_have_text("inconnu")
        shot(page, "status-offline")
    finally:
        stack.server.start()
    expect(light(page)).to_have_text("En ligne", timeout=60_000)


def test_while_synchronizing_the_light_blinks_unless_motion_is_reduced(page, stack):
    """A backlog big enough to watch is slow to build, so the status answer is played to the page."""
    from playwright.sync_api import expect

    doc = {**stack.status(), "mode": "synchronizing", "state": "synchronizing", "pending_push": 1250,
           "pending_pull": 40, "progress": {"what": "push", "done": 750, "total": 1250}}
    page.route("**/api/status", lambda route: route.fulfill(json=doc))
    try:
        page.goto(stack.url + "/")
        expect(light(page)).to_have_text("Synchronisation")
        expect(page.locator("#status-light [data-field=progress]")).to_have_text("push 750/1250")
        expect(page.locator(".hero progress")).to_have_attribute("value", "750")
        blink = "el => getComputedStyle(el).animationName"
        assert page.locator("#status-light [data-light]").evaluate(blink) == "blink"
        shot(page, "status-synchronizing")
        page.emulate_media(reduced_motion="reduce")
        assert page.locator("#status-light [data-light]").evaluate(blink) == "none"
        attention = {**doc, "mode": "online", "state": "attention", "reason": "service_stopped", "progress": None}
        page.unroute("**/api/status")
        page.route("**/api/status", lambda route: route.fulfill(json=attention))
        page.goto(stack.url + "/")
        expect(light(page)).to_have_text("Intervention requise")
        expect(page.locator(".hero [data-field=reason]")).to_contain_text("ne tourne pas sur ce PC")
    finally:
        page.emulate_media(reduced_motion="no-preference")
        page.unroute("**/api/status")


def test_open_a_conflict_confirm_this_pcs_values_and_the_cloud_gets_them(page, stack):
    from playwright.sync_api import expect

    page.goto(stack.url + "/conflicts")
    expect(page.locator("#conflicts tbody tr")).to_have_count(3)  # two conflicts and the refused visit
    row = page.locator("#conflicts tbody tr", has_text="Anna Peeters")  # the record's label
    expect(row).to_contain_text("modifiée des deux côtés")
    shot(page, "conflicts")

    row.locator("a.icon-button").click()  # the magnifying glass
    expect(page.locator("h1")).to_contain_text("Anna Peeters")
    phone = page.locator('#compare tr[data-field-name="phone"]')
    expect(phone).to_have_class("state-conflict")
    expect(phone.locator("td.local")).to_have_text(LOCAL_PHONE)
    expect(phone.locator("td.cloud")).to_have_text(CLOUD_PHONE)
    expect(phone.locator("td.base")).to_have_text("0470 00 00 00")
    shot(page, "conflict")

    page.click("#keep-local")
    expect(page.locator("h1")).to_have_text("Confirmer la décision")
    expect(page.locator('#changes tr[data-field-name="phone"] td.then')).to_have_text(LOCAL_PHONE)
    assert one(stack.local, "select status from ccsync.conflicts where pk->>'id' = '1'") == "open"  # not yet
    shot(page, "conflict-confirm")
    page.click("#confirm")
    expect(page.locator(".flash-success")).to_contain_text("Décision enregistrée pour Anna Peeters")
    expect(page.locator("#conflicts tbody tr")).to_have_count(2)  # the row left the list
    # the decision is a change like any other: the running service carries it to the cloud
    wait_for(lambda: one(stack.cloud, "select phone from patients where id = 1") == LOCAL_PHONE, 30,
             "the local version on the cloud")
    wait_for(lambda: one(stack.cloud_db.owner, "select status from ccsync.conflicts where pk->>'id' = '1'")
             == "resolved", 30, "the decision on the cloud")
    page.locator(".tabs a", has_text="Décidés").click()
    expect(page.locator("#resolved tbody tr")).to_have_count(1)
    expect(page.locator("#resolved tbody tr").first).to_contain_text(USER)
    expect(page.locator("#resolved tbody tr").first).to_contain_text("la version de ce PC")
    shot(page, "conflicts-resolved")

    page.goto(stack.url + "/history")
    expect(page.locator("#history tbody tr").first).to_be_visible()
    shot(page, "history")


@pytest.mark.skipif(not HAS_SUMEHR, reason="reconciler.sumehr.publisher (the Sumehr publisher) is not in this checkout yet")
def test_a_hub_failure_is_listed_and_retry_now_publishes_once_the_hub_is_back(page, stack):
    from playwright.sync_api import expect

    wait_for(lambda: any(p["state"] == "failing" for p in _listed(stack)), 60, "the HUB failure on the PC")
    page.goto(stack.url + "/sumehr")
    row = page.locator("#patient-2")
    expect(row).to_have_attribute("data-state", "failing")
    expect(row.locator(".tag")).to_have_text("en échec")  # the page speaks French here
    expect(row).to_contain_text("Marc Janssens")
    expect(row.locator("td.reason")).to_contain_text("Le HUB a répondu par une erreur (HTTP 503)")
    expect(page.locator('[data-count="hub_failures"]')).to_have_text("1")
    shot(page, "sumehr")
    for width in (390, 1366):  # a failing row, its reason and its button: on a phone and a laptop
        page.set_viewport_size({"width": width, "height": 820})
        assert overflow(page) <= 0, f"the Sumehr page is {overflow(page)} px too wide at {width} px"
        assert untranslated(page, "fr") == []
        if width == 390:
            shot(page, "sumehr-phone")

    stack.hub.ok()
    row.locator("button", has_text="Réessayer maintenant").click()
    expect(page.locator(".flash")).to_contain_text("Marc Janssens : un nouvel essai est demandé")
    wait_for(lambda: stack.hub.stored("85010100002") is not None, 30, "the Sumehr on the HUB")
    deadline = time.monotonic() + 30
    while page.locator("#patient-2").count() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.goto(stack.url + "/sumehr")
    expect(page.locator("#patient-2")).to_have_count(0)
    expect(page.locator(".empty")).to_contain_text("Rien à examiner")
    shot(page, "sumehr-published")


PAGES = ["/", "/conflicts", "/conflicts/resolved", "open-conflict", "resolved-conflict", "/history", "/sumehr",
         "/sumehr?all=1", "/sumehr?show=waiting&q=nobody", "/nowhere"]


def test_every_page_fits_a_phone_and_a_laptop_and_speaks_french_and_dutch(context, stack):
    """390 px and 1,366 px wide: nothing wider than the window; in French and in Dutch: no English left."""
    from playwright.sync_api import expect

    p = context.new_page()
    try:
        for lang in ("fr", "nl"):
            p.goto(f"{stack.url}/lang/{lang}?next=/")
            for width in (390, 1366):
                p.set_viewport_size({"width": width, "height": 800})
                for path in PAGES + ["confirm"]:
                    if path in ("open-conflict", "resolved-conflict", "confirm"):
                        status = "resolved" if path == "resolved-conflict" else "open"
                        p.goto(f"{stack.url}/conflicts/{conflict_id(stack, status)}")
                        if path == "confirm":
                            p.click("#keep-cloud")  # a form's POST: the confirmation is a new page, wait for it
                            expect(p.locator("#confirm")).to_be_visible()
                    else:
                        p.goto(stack.url + path)
                    p.wait_for_timeout(50)
                    assert overflow(p) <= 0, f"{path} is {overflow(p)} px too wide at {width} px ({lang})"
                    assert p.evaluate("() => [...document.querySelectorAll('.mainnav a')].every("
                                      "a => a.getBoundingClientRect().right <= window.innerWidth)"), \
                        f"a section of the top bar is past the edge on {path} at {width} px ({lang})"
                    if width == 390:
                        assert untranslated(p, lang) == [], f"{path} ({lang}) holds English: {untranslated(p, lang)}"
            if lang == "nl":
                p.set_viewport_size({"width": 1366, "height": 800})
                p.goto(stack.url + "/")
                shot(p, "status-nl")
        p.goto(f"{stack.url}/lang/fr?next=/")
        p.set_viewport_size({"width": 390, "height": 844})
        p.goto(f"{stack.url}/conflicts/{conflict_id(stack, 'open')}")
        shot(p, "conflict-phone")
        p.goto(stack.url + "/conflicts/resolved")
        shot(p, "conflicts-phone")
        # and the login page, for someone not logged in
        anon = context.browser.new_context(viewport={"width": 390, "height": 800}, locale="nl-BE",
                                           extra_http_headers={"Accept-Language": "nl-BE"})
        login = anon.new_page()
        login.goto(stack.url + "/auth/login")
        assert overflow(login) <= 0 and untranslated(login, "nl") == []
        anon.close()
    finally:
        p.close()


def test_the_refused_record_and_deciding_again_fit_a_phone_and_a_laptop_and_speak_french_and_dutch(context, stack):
    """The refused visit (its reason in the reader's words), its confirmation, and a decided conflict decided
    again (its merge form starting at the decision in force, and its confirmation): 390 px and 1,366 px wide,
    nothing wider than the window; in French and Dutch, no English left."""
    from playwright.sync_api import expect

    refused = one(stack.local, "select min(id) from ccsync.conflicts where kind = 'refused'")
    decided = conflict_id(stack, "resolved") or _decide_one(stack)
    in_force = one(stack.local, "select resolved_row ->> 'phone' from ccsync.conflicts where id = %s", (decided,))
    p = context.new_page()
    reason = {"fr": "Le cloud a refusé la nouvelle ligne dans", "nl": "De cloud weigerde de nieuwe rij in"}
    try:
        for lang in ("fr", "nl"):
            p.goto(f"{stack.url}/lang/{lang}?next=/")
            for width in (390, 1366):
                p.set_viewport_size({"width": width, "height": 800})
                for step in ("refused", "refused-confirm", "again", "again-confirm"):
                    if step.startswith("refused"):
                        p.goto(f"{stack.url}/conflicts/{refused}")
                        expect(p.locator("#refusal-reason")).to_contain_text(reason[lang])
                        expect(p.locator("#refusal-reason bdi").first).to_have_text("public.visits")
                        if step == "refused-confirm":
                            p.click("#keep-discard")
                            expect(p.locator("#confirm")).to_be_visible()
                        elif lang == "fr" and width == 390:
                            shot(p, "refused-phone")
                    else:
                        p.goto(f"{stack.url}/conflicts/{decided}")
                        p.locator("#decide summary").click()
                        phone = p.locator('#merge tr[data-field-name="phone"]')
                        expect(phone.locator("td.in-force input")).to_be_checked()
                        expect(phone.locator("input[type=text]")).to_have_value(in_force)
                        if step == "again-confirm":
                            phone.locator("input[value=cloud]").check()
                            p.click("#save-merged")
                            expect(p.locator('#changes tr[data-field-name="phone"] td.then')).to_have_text(CLOUD_PHONE)
                            expect(p.locator("#changes tbody tr")).to_have_count(1)  # the phone only: exactly that
                        elif lang == "fr" and width == 1366:
                            shot(p, "conflict-again")
                    p.wait_for_timeout(50)
                    assert overflow(p) <= 0, f"{step} is {overflow(p)} px too wide at {width} px ({lang})"
                    assert untranslated(p, lang) == [], f"{step} ({lang}) holds English: {untranslated(p, lang)}"
        assert one(stack.local, "select status from ccsync.conflicts where id = %s", (refused,)) == "open"  # confirmed nothing
    finally:
        p.close()


def _decide_one(stack) -> int:
    """A decided conflict for the page that decides again (when this test runs on its own)."""
    from reconciler import db

    with db.open_local(stack.local) as conn:
        reconciler.conflicts.resolve(conn, conflict_id(stack, "open"), "local", by=USER)
    return conflict_id(stack, "resolved")


def conflict_id(stack, status: str) -> int:
    return one(stack.local, "select min(id) from ccsync.conflicts where status = %s and kind <> 'refused'", (status,))


def _listed(stack) -> list[dict]:
    from reconciler.sumehr import publisher as sumehr

    settings = Settings(local=stack.local, cloud=stack.settings.cloud,
                        extra={"sumehr": {}, "hub": {"endpoint": stack.hub_url}})
    return on_node(stack.local, sumehr.list_patients, settings, failed_only=True)
