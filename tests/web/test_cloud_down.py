"""The panel when the practice's cloud cannot be reached: a page of its own (this PC works on its copy), never
"this PC's database is down", in the reader's language, never with the DSN or libpq's words. Real servers: this
PC's database runs, the cloud's DSN points where nothing listens."""

from __future__ import annotations

import pytest

from reconciler import panel_users as users, sync
from reconciler.config import Settings
from tests.fix_web import PASSWORD, SECRET, USER, csrf_token, log_in
from tests.sumehr.test_publisher import Clinic, templates  # noqa: F401 - templates: a fixture
from web import create_app

pytestmark = pytest.mark.one_version  # the panel's words do not depend on the PostgreSQL version

# the cloud's page, and words of the page for this PC's database down (which must not be shown)
CLOUD_WORDS = {
    "en": ("The practice's cloud cannot be reached: this PC works on its own copy",
           "The database of this PC cannot be reached"),
    "fr": ("Le cloud du cabinet est injoignable : ce PC travaille sur sa propre copie",
           "La base de données de ce PC est injoignable"),
    "nl": ("De cloud van de praktijk is onbereikbaar: deze pc werkt met zijn eigen kopie",
           "De databank van deze pc is onbereikbaar"),
}


@pytest.fixture
def panel_without_cloud(databases, templates):  # noqa: F811 - the imported fixture
    """A logged-in client of pc-1's panel, whose patient 1 has a Sumehr to publish, with the cloud out of reach."""
    clinic = Clinic(databases, templates, "http://127.0.0.1:1")  # a HUB is named; nothing is ever sent to it
    clinic.patient(1)
    clinic.sumehr(1, 1)
    sync.pull(Settings(local=clinic.nodes["pc-1"], cloud=clinic.pc_cloud["pc-1"]))
    users.add(clinic.nodes["pc-1"], USER, PASSWORD)
    offline = clinic.settings(offline=True)  # the cloud's DSN: 127.0.0.1 port 1, user nobody
    client = create_app({"SETTINGS": offline, "SECRET_KEY": SECRET, "TESTING": True}).test_client()
    assert log_in(client).status_code == 302
    return client


def test_a_retry_that_needs_the_cloud_says_the_cloud_is_out_of_reach_not_this_pcs_database(panel_without_cloud):
    client = panel_without_cloud
    assert client.get("/sumehr").status_code == 200  # the list itself works offline, from this PC's copy
    for lang, (cloud_words, local_words) in CLOUD_WORDS.items():
        headers = {"Accept-Language": lang}
        token = csrf_token(client, "/sumehr")
        page = client.post("/sumehr/1/retry", data={"csrf_token": token}, headers=headers)
        body = page.get_data(as_text=True).replace("&#39;", "'").replace("’", "'")
        assert page.status_code == 503, lang
        assert cloud_words in body, (lang, body)
        assert local_words not in body, lang
        for secret in ("port=1", "nobody", "127.0.0.1", "Connection refused", "connection to server"):
            assert secret not in body, (lang, secret)

        api = client.post("/api/sumehr/1/retry", headers={**headers, "X-CSRFToken": token})
        assert api.status_code == 503, lang
        doc = api.get_json()
        assert (doc["state"], doc["mode"], doc["reason"], doc["use"]) == \
            ("offline", "offline", "cloud_unreachable", "local"), lang
        assert doc["error"].replace("’", "'").startswith(cloud_words), (lang, doc["error"])
        assert "port=1" not in api.get_data(as_text=True)
