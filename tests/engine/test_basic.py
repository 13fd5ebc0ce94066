"""Push and pull, the everyday path."""


def test_init_copies_the_cloud(make_practice):
    p = make_practice(nodes=())
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 50) g")
    p.sql(p.cloud, "insert into encounters (id, patient_id, summary) select g, g, 'e' from generate_series(1, 50) g")
    p.add_node("pc-1")
    p.assert_converged()


def test_local_change_reaches_cloud_and_other_node(make_practice):
    p = make_practice(nodes=("pc-1", "pc-2"))
    p.sql(p.nodes["pc-1"], "insert into patients (id, name) values (1, 'Zoë')")
    result = p.push("pc-1")
    assert result["changes"] == 1 and result["transactions"] == 1
    assert p.rows(p.cloud) == p.rows(p.nodes["pc-1"])
    p.pull("pc-2")
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 0


def test_cloud_change_reaches_node_and_is_not_echoed(practice):
    p = practice
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'A')")
    p.sql(p.cloud, "update patients set phone = '123' where id = 1")
    p.pull("pc-1")
    p.assert_converged()
    assert p.sql(p.nodes["pc-1"], "select count(*) from ccsync.journal")[0][0] == 0
    assert p.push("pc-1")["changes"] == 0
