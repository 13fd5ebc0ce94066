"""A pull applies a cloud TRUNCATE while the application holds a transaction open on the PC: the pull waits for it,
and neither the application's COMMIT nor the pull is cancelled as a deadlock (issue 12: no lost write, no PC stuck).

The pull used to TRUNCATE the tables in the order the cloud's statement listed them: holding the patients, it waited
for the application's open transaction on the notes, whose COMMIT then waited for the patients (the deferred foreign
key reads the patient): a deadlock, in which PostgreSQL cancelled one of the two.
"""

import threading

import psycopg
import pytest

from reconciler import sync
from tests.engine.test_pull_races import _blocked
from tests.engine.test_truncates import TABLES, _kept, _practice

pytestmark = pytest.mark.one_version  # PostgreSQL's lock manager: the same on every version

# what the cloud does (as its owner: the application has no TRUNCATE privilege)
CLOUD = {
    "truncate-parents-first": "truncate patients, notes, letters, contacts, links, encounters",
    "truncate-children-first": "truncate encounters, links, contacts, letters, notes, patients",
    # patient 1 removed, then the notes emptied, in one transaction: the pull held patient 1's row (deleted) when
    # its TRUNCATE waited for the application's notes, whose COMMIT then waited for that row
    "delete-then-truncate": "begin; delete from notes where patient_id = 1; delete from letters where patient_id = 1; "
                            "delete from encounters where patient_id = 1; delete from patients where id = 1; "
                            "truncate notes; commit",
}

# what the application's open transaction wrote on the PC, and the value that must survive it (in a table or a record)
WRITES = {
    # a child row under a deferred foreign key: checked at COMMIT, which reads the patient
    "deferred-child": ("insert into notes (patient_id, at, body) values (1, now(), 'app note')", "app note"),
    # a child row under an immediate foreign key: the patient read at the insert
    "immediate-child": ("insert into letters (id, patient_id, body) values (40, 1, 'app letter')", "app letter"),
    # a lock on the parent itself
    "parent": ("update patients set phone = 'app phone' where id = 1", "app phone"),
    # two child tables, one deferred and one immediate (and ON DELETE CASCADE)
    "two-children": ("insert into notes (patient_id, at, body) values (1, now(), 'app note 2'); "
                     "insert into contacts (id, patient_id, value) values (40, 1, 'app contact')", "app contact"),
}


def _pull_while_open(p, node: str, app: psycopg.Connection) -> tuple[list, list]:
    """Start the pull, wait until it waits for a lock (the application's), then commit the application: (the
    pull's errors, the COMMIT's errors)."""
    pulled, committed = [], []

    def pull():
        try:
            sync.pull(p.settings(node))
        except Exception as exc:  # reported in the test's thread
            pulled.append(exc)

    thread = threading.Thread(target=pull)
    thread.start()
    try:
        assert _blocked(p.nodes[node], thread), "the pull did not wait for the application's transaction"
        try:
            app.commit()
        except psycopg.Error as exc:
            committed.append(exc)
    finally:
        thread.join(60)
    assert not thread.is_alive(), "the pull never finished"
    return pulled, committed


# every write against every cloud transaction on the fast path; the reference path (one source transaction per
# target transaction, change by change) against the deferred child, the case that deadlocked
CASES = [(w, c, "") for w in WRITES for c in CLOUD] + [("deferred-child", c, "1") for c in CLOUD]


@pytest.mark.parametrize("write, cloud, reference", CASES,
                         ids=[f"{w}-{c}-{'reference' if r else 'fast'}" for w, c, r in CASES])
def test_a_cloud_truncate_waits_for_the_applications_open_transaction(make_practice, monkeypatch, write, cloud,
                                                                      reference):
    monkeypatch.setenv("CCSYNC_REFERENCE", reference)
    p = _practice(make_practice, ("pc-1",))
    p.sql(p.cloud_owner, CLOUD[cloud])
    statements, value = WRITES[write]
    with psycopg.connect(p.nodes["pc-1"]) as app:
        app.execute(statements)
        pulled, committed = _pull_while_open(p, "pc-1", app)
    assert not committed, f"the application's COMMIT failed: {committed}"
    assert not pulled, f"the pull failed: {pulled}"
    p.sync_all()
    p.assert_converged(TABLES)
    assert _kept(p, "pc-1", value), f"the application's write {value!r} is nowhere"
