"""Operations on a running practice: untrack a table and track it again."""

import reconciler


def test_a_table_tracked_again_brings_the_changes_made_while_untracked(make_practice):
    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'before')")
    p.sync_all()
    reconciler.untrack(p.cloud_owner, ["encounters", "patients"])
    p.sql(p.cloud, "insert into patients (id, name) values (2, 'while untracked')")
    p.sql(p.cloud, "update patients set name = 'changed while untracked' where id = 1")
    reconciler.track(p.cloud_owner, ["patients", "encounters"])
    p.sql(p.cloud, "insert into patients (id, name) values (3, 'after')")
    p.sync_all()
    p.assert_converged()
    assert [r[0] for r in p.sql(p.nodes["pc-1"], "select name from patients order by id")] == [
        "changed while untracked", "while untracked", "after"]
