"""Schema changes made as the README says (the same ALTER TABLE everywhere) while changes wait to be synced."""

import pytest

from reconciler.errors import CcsyncError


@pytest.mark.parametrize("many", [False, True])  # one row (the staged way) or a window of inserts (direct COPY)
def test_a_column_added_with_a_default_takes_it_for_rows_inserted_before(make_practice, many):
    p = make_practice(nodes=("pc-1",))
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) select i, 'before' from generate_series(1, %s) i",
          (30 if many else 1,))
    p.sql(p.cloud, "insert into patients (id, name) values (100, 'cloud, before')")
    p.alter("alter table patients add column visits int not null default 5")
    p.sync_all()
    p.assert_converged()
    assert p.sql(p.cloud, "select distinct visits from patients") == [(5,)]


def test_a_renamed_column_stops_the_sync_with_a_clear_line_and_loses_nothing(make_practice):
    p = make_practice(nodes=("pc-1",))
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'Anna', '111')")
    p.sync_all()
    p.sql(p.nodes["pc-1"], "update patients set phone = 'edited' where id = 1")
    p.alter("alter table patients rename column phone to tel")
    with pytest.raises(CcsyncError, match=r"public.patients names column\(s\) phone that the cloud's table"):
        p.push("pc-1")
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 1  # still pending
    assert p.sql(p.cloud, "select tel from patients") == [("111",)]
