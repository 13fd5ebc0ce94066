"""The panel for the tests: a practice with real conflicts of every kind, a panel user, the app and its client.

The practice is built once per test module (building one takes seconds); each test that resolves a conflict
resolves its own patient's, so the tests stay independent of their order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.fix_pg import Databases
from tests.fix_sync import Practice
from reconciler import panel_users as users
from web import create_app

USER = "Dr Peeters"
PASSWORD = "correct horse battery staple"
SECRET = "a test secret that is long enough"
HOSTILE = "<script>alert(1)</script>"

# patient id -> what the PC and the cloud do to it while they cannot see each other; 1, 9 and 10 stay open
# (the tests that refuse a resolution use them), the others are each resolved by one test
SCENARIO = {
    1: ("update_update", f"update patients set name = '{HOSTILE}', phone = 'local 1' where id = 1",
        "update patients set name = 'Anna Cloud', phone = 'cloud 1' where id = 1"),
    2: ("update_update", "update patients set phone = 'local 2', notes = 'local note' where id = 2",
        "update patients set phone = 'cloud 2' where id = 2"),
    3: ("update_update", "update patients set phone = 'local 3', balance = 33.30 where id = 3",
        "update patients set phone = 'cloud 3', balance = 30.03 where id = 3"),
    4: ("update_update", "update patients set phone = 'local 4' where id = 4",
        "update patients set phone = 'cloud 4' where id = 4"),
    5: ("update_update", "update patients set phone = 'local 5' where id = 5",
        "update patients set phone = 'cloud 5' where id = 5"),
    6: ("delete_update", "delete from patients where id = 6", "update patients set phone = 'cloud 6' where id = 6"),
    7: ("update_delete", "update patients set phone = 'local 7' where id = 7", "delete from patients where id = 7"),
    8: ("insert_insert", "insert into patients (id, name) values (8, 'from pc-1')",
        "insert into patients (id, name) values (8, 'from the cloud')"),
    9: ("update_update", "update patients set phone = 'local 9' where id = 9",
        "update patients set phone = 'cloud 9' where id = 9"),
    10: ("update_update", "update patients set phone = 'local 10', balance = 10.10 where id = 10",
         "update patients set phone = 'cloud 10', balance = 1.01 where id = 10"),
    12: ("update_update", "update patients set phone = 'local 12', notes = 'local note 12' where id = 12",
         "update patients set phone = 'cloud 12', notes = 'cloud note 12' where id = 12"),
}


@dataclass
class WebPractice:
    practice: Practice
    token: str
    conflicts: dict[int, int] = field(default_factory=dict)  # patient id -> conflict id
    refused: int | None = None  # the record of the refused transaction

    @property
    def local(self) -> str:
        return self.practice.nodes["pc-1"]

    @property
    def cloud(self) -> str:
        return self.practice.cloud

    @property
    def cloud_owner(self) -> str:
        """The cloud's schema owner (who sets display labels)."""
        return self.practice.cloud_owner

    def settings(self):
        return self.practice.settings("pc-1")


def build_practice(databases) -> WebPractice:
    p = Practice(databases, nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) select g, 'Patient ' || g, 'base ' || g "
                   "from generate_series(1, 12) g where g <> 8")
    p.sync_all()
    for _kind, on_pc, on_cloud in SCENARIO.values():
        p.sql(p.nodes["pc-1"], on_pc)
        p.sql(p.cloud, on_cloud)
    # and a transaction the cloud refuses: a visit of patient 11, whom the cloud deleted meanwhile
    p.sql(p.nodes["pc-1"], "insert into encounters (id, patient_id, summary) values (11, 11, 'a visit')")
    p.sql(p.cloud, "delete from patients where id = 11")
    p.sync_all()
    token = users.add(p.nodes["pc-1"], USER, PASSWORD, token=True)["token"]
    users.add(p.nodes["pc-1"], "assistant", "another good password")
    wp = WebPractice(p, token)
    for cid, kind, pk in p.sql(wp.local, "select id, kind, (pk->>'id')::int from ccsync.conflicts "
                                         "where status = 'open'"):
        if kind == "refused":
            wp.refused = cid
        else:
            wp.conflicts[pk] = cid
    assert sorted(wp.conflicts) == sorted(SCENARIO), "every scenario makes one conflict"
    assert wp.refused, "the refused visit makes a record"
    return wp


@pytest.fixture(scope="module")
def web_practice(pg):
    databases = Databases(pg)
    yield build_practice(databases)
    databases.drop_all()


@pytest.fixture(scope="module")
def app(web_practice):
    return create_app({"SETTINGS": web_practice.settings(), "SECRET_KEY": SECRET, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/auth/login") -> str:
    html = client.get(path).get_data(as_text=True)
    found = CSRF_META.search(html) or CSRF_INPUT.search(html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def log_in(client, name: str = USER, password: str = PASSWORD, next_path: str | None = None):
    data = {"name": name, "password": password, "csrf_token": csrf_token(client)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/auth/login", data=data)


@pytest.fixture(scope="module")
def session_cookie(app) -> str:
    """One login per module: checking a password hash is slow on purpose, and the session is a signed cookie."""
    client = app.test_client()
    response = log_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


@pytest.fixture
def logged_in(app, client, session_cookie):
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], session_cookie)
    return client
