"""The PCs seen from the cloud: `ccsync nodes list/remove`, uninstall on the cloud and on a PC, and a panel
left running after an uninstall."""

import json

import psycopg
import pytest
from click.testing import CliRunner

import cli
from reconciler import clock
from reconciler.engine import housekeeping
from tests.fix_sync import pc_role
from tests.fix_web import PASSWORD, SECRET, USER, log_in

pytestmark = pytest.mark.one_version

DAY_MS = 24 * 3600 * 1000


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def age_cloud_journal(practice, days: float) -> None:
    """Make every cloud journal entry look `days` old (as the retention rule sees them)."""
    practice.sql(practice.cloud_owner, "update ccsync.journal set hlc = hlc - (%s::bigint << %s)",
                 (int(days * DAY_MS), clock.COUNTER_BITS))


@pytest.fixture
def two_pcs(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 5) g")
    p.sync("pc-1")
    p.sync("pc-2")
    p.sql(p.cloud, "update patients set phone = 'new' where id <= 3")  # 3 changes
    p.sync("pc-1")  # pc-2 stays behind: it has not pulled them
    return p


def test_nodes_list_shows_each_pc_its_syncs_what_it_lacks_and_who_holds_back_pruning(two_pcs):
    p = two_pcs
    listed = {n["name"]: n for n in json.loads(run("nodes", "list", "--dsn", p.cloud_owner, "--json").output)}
    assert sorted(listed) == ["pc-1", "pc-2"]
    assert set(listed["pc-1"]) == {"name", "role", "registered_at", "last_push_at", "last_pull_at", "changes_behind",
                                   "holds_back_pruning"}
    assert listed["pc-1"]["role"] == pc_role("pc-1") and listed["pc-2"]["role"] == pc_role("pc-2")
    assert listed["pc-1"]["changes_behind"] == 0 and listed["pc-2"]["changes_behind"] == 3
    assert listed["pc-1"]["last_pull_at"] > listed["pc-2"]["last_pull_at"]
    assert not listed["pc-1"]["holds_back_pruning"] and not listed["pc-2"]["holds_back_pruning"]  # all recent
    age_cloud_journal(p, 2)
    listed = {n["name"]: n for n in json.loads(run("nodes", "list", "--dsn", p.cloud_owner, "--json").output)}
    assert listed["pc-2"]["holds_back_pruning"] and not listed["pc-1"]["holds_back_pruning"]
    text = run("nodes", "list", "--dsn", p.cloud_owner).output
    assert "pc-2" in text and "held back by this PC" in text


def test_removing_a_pc_lets_the_cloud_prune_what_only_it_lacked(two_pcs):
    p = two_pcs
    age_cloud_journal(p, 2)
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        housekeeping.prune(cloud)  # what both PCs pulled goes; pc-2 has not pulled the 3 updates: they stay
        assert cloud.execute("select count(*) from ccsync.journal where op = 'U'").fetchone()[0] == 3
    removed = run("nodes", "remove", "pc-2", "--dsn", p.cloud_owner)
    assert removed.exit_code == 0 and "pc-2 removed" in removed.output
    assert [n["name"] for n in json.loads(run("nodes", "list", "--dsn", p.cloud_owner, "--json").output)] == ["pc-1"]
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        housekeeping.prune(cloud)
        assert cloud.execute("select count(*) from ccsync.journal where op = 'U'").fetchone()[0] == 0
    again = run("nodes", "remove", "pc-2", "--dsn", p.cloud_owner)
    assert again.exit_code == 1 and "no PC named 'pc-2' is registered on this cloud (registered: pc-1)" in again.output


def test_nodes_commands_refuse_a_pcs_database(two_pcs):
    result = run("nodes", "list", "--dsn", two_pcs.nodes["pc-1"])
    assert result.exit_code == 1 and "runs on the cloud's database" in result.output


def test_uninstall_on_the_cloud_names_the_registered_pcs_and_a_second_uninstall_says_there_is_nothing(two_pcs):
    p = two_pcs
    refused = run("uninstall", "--dsn", p.cloud_owner)
    assert refused.exit_code == 1 and "2 PC(s) are registered on this cloud (pc-1, pc-2)" in refused.output
    forced = run("uninstall", "--dsn", p.cloud_owner, "--force")
    assert forced.exit_code == 0 and "pc-1, pc-2 can no longer sync with this cloud" in forced.output
    second = run("uninstall", "--dsn", p.cloud_owner)
    assert second.exit_code == 0 and second.output == "ccsync is not installed in this database: nothing to uninstall\n"


def test_an_uninstalled_pc_leaves_the_register_so_it_holds_back_nothing(two_pcs):
    p = two_pcs
    age_cloud_journal(p, 2)
    result = run("uninstall", "--dsn", p.nodes["pc-2"], "--cloud", p.pcs["pc-2"].cloud)
    assert result.exit_code == 0 and "pc-2 left the cloud's register" in result.output
    assert [n["name"] for n in json.loads(run("nodes", "list", "--dsn", p.cloud_owner, "--json").output)] == ["pc-1"]
    with psycopg.connect(p.cloud_owner, autocommit=True) as cloud:
        housekeeping.prune(cloud)
        assert cloud.execute("select count(*) from ccsync.journal where op = 'U'").fetchone()[0] == 0
    # without the cloud, it says what to run there
    lone = run("uninstall", "--dsn", p.nodes["pc-1"])
    assert lone.exit_code == 0 and "run `ccsync nodes remove pc-1 --dsn CLOUD`" in lone.output


def test_a_panel_left_running_after_uninstall_says_so_instead_of_a_bare_500(two_pcs):
    from reconciler import panel_users
    from web import create_app

    p = two_pcs
    panel_users.add(p.nodes["pc-1"], USER, PASSWORD)
    app = create_app({"SETTINGS": p.settings("pc-1"), "SECRET_KEY": SECRET, "TESTING": True})
    client = app.test_client()
    assert log_in(client).status_code == 302
    assert client.get("/").status_code == 200
    assert run("uninstall", "--dsn", p.nodes["pc-1"], "--force").exit_code == 0
    for path in ("/auth/login", "/", "/conflicts/"):
        page = client.get(path)
        assert page.status_code == 503, path
        assert "ccsync is no longer installed in this PC's database" in page.get_data(as_text=True)
    api = client.get("/api/status")  # the same session, through the API
    assert api.status_code == 503 and "no longer installed" in api.get_json()["error"]
