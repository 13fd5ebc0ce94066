"""The reconciler's own comparisons whatever the sessions' settings (issue 12, item 2): a key whose text depends
on the session (timestamptz, float) is one key for login's pending-edit check, the pull's plans and the refresh."""

import psycopg
import pytest

from reconciler import conflicts, sync
from tests.fix_sync import on_node

ZONES = ["Europe/Brussels", "America/St_Johns", "Asia/Kathmandu"]


@pytest.fixture
def p(make_practice):
    p = make_practice(nodes=("pc-1",))
    for dsn in [p.cloud_owner, p.nodes["pc-1"]]:
        p.sql(dsn, "create table notes (patient int, at timestamptz, dose float8, body text, primary key (patient, at))")
    import reconciler

    reconciler.track(p.cloud_owner, ["notes"])
    reconciler.track(p.nodes["pc-1"], ["notes"])
    p.sql(p.cloud, "insert into notes values (1, '2026-03-29 00:30:00+00', 0.1::float8 + 0.2::float8, 'cloud, first')")
    p.sync_all()
    return p


def _in(dsn: str, zone: str, digits: int, query: str, params=None) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("select set_config('TimeZone', %s, false), set_config('extra_float_digits', %s, false)",
                     (zone, str(digits)))
        conn.execute(query, params)


@pytest.mark.parametrize("zone", ZONES)
def test_login_keeps_a_pending_edit_of_a_row_keyed_by_a_time(p, zone):
    _in(p.nodes["pc-1"], zone, 0, "update notes set body = 'local edit' where patient = 1")
    _in(p.cloud, "UTC", 3, "update notes set body = 'cloud, second' where patient = 1")
    _in(p.cloud, "Asia/Tokyo", 1, "update notes set body = 'cloud, third', dose = dose * 3 where patient = 1")
    sync.login(p.settings("pc-1"))  # a pull before the push: the row is left to the push
    assert p.sql(p.nodes["pc-1"], "select body from notes") == [("local edit",)]
    p.sync_all()
    p.assert_converged(tables=("notes",))
    assert p.sql(p.cloud, "select body, dose = (0.1::float8 + 0.2::float8) * 3 from notes") == [("cloud, third", True)]
    [c] = on_node(p.nodes["pc-1"], conflicts.list_conflicts)
    assert c["local_row"]["body"] == "local edit"


@pytest.mark.parametrize("zone", ZONES)
def test_two_cloud_changes_of_a_row_keyed_by_a_time_are_two_steps(p, zone):
    _in(p.cloud, zone, 0, "update notes set body = 'older' where patient = 1")
    _in(p.cloud, "UTC", 3, "update notes set body = 'newer' where patient = 1")
    p.sync_all()
    p.assert_converged(tables=("notes",))
    assert p.sql(p.nodes["pc-1"], "select body, dose = 0.1::float8 + 0.2::float8 from notes") == [("newer", True)]
