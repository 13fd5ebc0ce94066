"""The service pushes and pulls only when a look at a journal finds work (engine/news.py): it must still see every
change of the others, on every server version — while it pushes all the time, and when no notification came."""

import threading
import time

import psycopg
import pytest

from reconciler.engine import news
from reconciler.engine.sides import open_cloud, open_node
from tests.fix_sync import Practice, wait_for
from tests.test_service import Node, one



@pytest.fixture
def two_pcs(databases):
    return Practice(databases, nodes=("pc-1", "pc-2"))


def silent(dsn: str) -> psycopg.Connection:
    """A session of the application whose commits notify no service: as if each came within 50 ms of its previous
    one (ccsync.notify_journal notifies at most every 50 ms per session)."""
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("set ccsync.notified_at = '1e12'")
    return conn


def test_a_look_finds_the_others_changes_and_only_what_it_has_not_seen(two_pcs):
    p = two_pcs
    node, name = open_node(p.nodes["pc-1"])
    cloud = open_cloud(p.pcs["pc-1"].cloud, node=name)
    try:
        pulls, pushes = news.Look(name), news.Look()
        assert pulls.anything(cloud) and pushes.anything(node)  # nothing seen yet: a first run does everything
        pulls.done(), pushes.done()
        assert not pulls.anything(cloud) and not pushes.anything(node)

        p.sql(p.apps["pc-1"], "insert into patients (id, name) values (1, 'here')")
        assert pushes.anything(node)
        assert pushes.anything(node)  # not done yet: still there
        p.push("pc-1")
        pushes.done()
        assert not pushes.anything(node)
        assert not pulls.anything(cloud)  # the cloud journaled the push, but it is this PC's own change

        p.sql(p.cloud, "insert into patients (id, name) values (2, 'online')")
        assert pulls.anything(cloud)
        pulls.forget()  # (a run that failed: look again from scratch)
        assert pulls.anything(cloud)
        p.pull("pc-1")
        pulls.done()
        assert not pulls.anything(cloud)

        p.sql(p.apps["pc-2"], "insert into patients (id, name) values (3, 'another pc')")
        p.push("pc-2")
        assert pulls.anything(cloud)
        p.pull("pc-1")
        pulls.done()

        with silent(p.cloud) as app:  # in progress while the service looks, committed afterwards
            with app.transaction():
                app.execute("update patients set phone = '1' where id = 2")
                p.sql(p.cloud, "insert into patients (id, name) values (4, 'after it began')")  # committed first
                assert pulls.anything(cloud)
                p.pull("pc-1")
                pulls.done()
                assert not pulls.anything(cloud)  # (in progress in the snapshot seen: below its xmax)
            assert pulls.anything(cloud)
    finally:
        node.close()
        cloud.close()


def test_the_service_finds_every_change_of_the_others_quiet_or_busy(two_pcs):
    """Quiet: a session that notified less than 50 ms ago commits without a notification, and the journal sequence
    moved at its insert, long before its commit; the service must find it at its next look, not at its safety
    sync. Busy: while this PC's own pushes keep moving the cloud's journal, the changes of the application online
    and of another PC must arrive as they come, not after this PC has stopped writing."""
    p = two_pcs
    service = Node(p.pcs["pc-1"], p.cloud).start()
    try:
        time.sleep(0.5)  # the first sync done, the service idles
        for dsn, row in ((p.cloud, 1), (p.apps["pc-1"], 2)):
            with silent(dsn) as app, app.transaction():
                app.execute("insert into patients (id, name) values (%s, 'silent')", (row,))
                time.sleep(1.0)  # the service looks several times meanwhile
        wait_for(lambda: one(p.nodes["pc-1"], "select count(*) from patients where id = 1") == 1, 8,
                 "the cloud's change on the PC")
        wait_for(lambda: one(p.cloud, "select count(*) from patients where id = 2") == 1, 8,
                 "the PC's change on the cloud")
        _busy(p)
    finally:
        service.stop()
    p.pull("pc-2")
    p.assert_converged(("patients",))


def _busy(p):
    writing = threading.Event()
    writing.set()

    def write_locally():
        with psycopg.connect(p.apps["pc-1"], autocommit=True) as c:
            i = 1000
            while writing.is_set():
                c.execute("insert into patients (id, name) values (%s, 'busy')", (i,))
                i += 1
                time.sleep(0.002)

    writer = threading.Thread(target=write_locally, daemon=True)
    writer.start()
    try:
        wait_for(lambda: one(p.cloud, "select count(*) from patients where id >= 1000") > 20, 20, "pushes under way")
        for i in range(10, 15):
            p.sql(p.cloud, "insert into patients (id, name) values (%s, 'online')", (i,))
            p.sql(p.apps["pc-2"], "insert into patients (id, name) values (%s, 'pc-2')", (100 + i,))
            p.push("pc-2")
            time.sleep(0.2)
        wait_for(lambda: one(p.nodes["pc-1"], "select count(*) from patients where id between 3 and 999") == 10, 8,
                 "the others' changes on the busy PC")
        assert writer.is_alive()  # they came while it was still writing
        writing.clear()
        writer.join(10)
        wait_for(lambda: one(p.nodes["pc-1"], "select count(*) from ccsync.journal") == 0, 20, "everything pushed")
    finally:
        writing.clear()
