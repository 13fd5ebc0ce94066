"""Review of the push's net cut (b53876e, 6cc56b0): each scenario run on the fast paths and on the reference."""

import psycopg
import pytest


def _records(p):
    return p.sql(p.cloud_owner, "select kind, node, table_name, pk::text from ccsync.conflicts order by id")


def _outcome(p, done, tables=("patients", "encounters")):
    return ({k: done.get(k, 0) for k in ("changes", "conflicts", "refused")},
            {t: p.rows(p.cloud, t) for t in tables}, _records(p))


def _refused_fk(p):
    """T1 points an encounter at a patient the cloud deleted (refused there) and adds another encounter;
    T2 points the first encounter at a live patient."""
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 5) g")
    p.sql(p.cloud, "insert into encounters (id, patient_id, at, summary) values (1, 1, '2026-01-01', 's')")
    p.pull("pc-1")
    p.sql(p.cloud, "delete from patients where id = 5")  # online; pc-1 has not pulled it
    with psycopg.connect(p.apps["pc-1"], autocommit=True) as conn:
        with conn.transaction():  # T1
            conn.execute("update encounters set patient_id = 5 where id = 1")
            conn.execute("insert into encounters (id, patient_id, at, summary) values (9, 3, '2026-01-02', 'T1')")
        conn.execute("update encounters set patient_id = 3 where id = 1")  # T2
    return _outcome(p, p.push("pc-1"))


def _refused_unique(p):
    """T1 gives patient 1 an INSS another PC already registered on the cloud (refused) and changes patient 2;
    T2 corrects patient 1's INSS."""
    p.alter("alter table patients add column inss text unique")
    p.sql(p.cloud, "insert into patients (id, name) select g, 'p' || g from generate_series(1, 3) g")
    p.pull("pc-1")
    p.sql(p.cloud, "insert into patients (id, name, inss) values (10, 'other', '85073003328')")  # pc-1 not pulled
    with psycopg.connect(p.apps["pc-1"], autocommit=True) as conn:
        with conn.transaction():  # T1
            conn.execute("update patients set inss = '85073003328' where id = 1")
            conn.execute("update patients set phone = 'T1' where id = 2")
        conn.execute("update patients set inss = '90010100166' where id = 1")  # T2
    return _outcome(p, p.push("pc-1"), ("patients",))


@pytest.mark.one_version
@pytest.mark.parametrize("scenario", [_refused_fk, _refused_unique], ids=["fk", "unique"])
def test_a_refused_intermediate_transaction_is_refused_as_on_the_reference(make_practice, monkeypatch, scenario):
    fast = scenario(make_practice())
    monkeypatch.setenv("CCSYNC_REFERENCE", "1")
    reference = scenario(make_practice())
    print("\nFAST     ", fast, "\nREFERENCE", reference)
    assert fast == reference


def _swap(p):
    """Two rows swap a unique value across three transactions (only valid in commit order)."""
    p.alter("alter table patients add column inss text unique")
    p.sql(p.cloud, "insert into patients (id, name, inss) values (1, 'a', 'x'), (2, 'b', 'y')")
    p.pull("pc-1")
    with psycopg.connect(p.apps["pc-1"], autocommit=True) as conn:
        conn.execute("update patients set inss = 'tmp' where id = 1")
        conn.execute("update patients set inss = 'x' where id = 2")
        conn.execute("update patients set inss = 'y' where id = 1")
        conn.execute("update patients set inss = 'z' where id = 2")
        conn.execute("update patients set inss = 'x' where id = 2")
    return _outcome(p, p.push("pc-1"), ("patients",))


@pytest.mark.one_version
def test_a_unique_swap_across_transactions(make_practice, monkeypatch):
    fast = _swap(make_practice())
    monkeypatch.setenv("CCSYNC_REFERENCE", "1")
    assert fast == _swap(make_practice())


def _audited(p):
    """The cloud keeps a history of every patient change (an application trigger, as a medical record's audit)."""
    p.sql(p.cloud_owner, """
        create table phone_history (n serial primary key, patient int, phone text);
        create function keep_phone() returns trigger language plpgsql security definer as
        $$ begin insert into public.phone_history (patient, phone) values (new.id, new.phone); return new; end $$;
        create trigger keep_phone after update on patients for each row execute function keep_phone();""")
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'a')")
    p.pull("pc-1")
    with psycopg.connect(p.apps["pc-1"], autocommit=True) as conn:
        for v in ("v1", "v2", "v3"):
            conn.execute("update patients set phone = %s where id = 1", (v,))
    p.push("pc-1")
    return (p.sql(p.cloud_owner, "select phone from phone_history order by n"),
            p.sql(p.cloud_owner, "select ccsync.changed(new, old)::text, ccsync.changed(old, new)::text "
                                 "from ccsync.journal where origin = 'pc-1' order by id"))


@pytest.mark.one_version
def test_the_clouds_history_sees_each_committed_version(make_practice, monkeypatch):
    fast = _audited(make_practice())
    monkeypatch.setenv("CCSYNC_REFERENCE", "1")
    reference = _audited(make_practice())
    print("\nFAST     ", fast, "\nREFERENCE", reference)
    assert fast == reference


def test_a_net_push_reports_its_counts_as_numbers(practice):
    import json

    from click.testing import CliRunner

    import cli
    from reconciler import sync
    from reconciler.progress import Bar

    p = practice
    p.sql(p.cloud, "insert into patients (id, name) values (1, 'a'), (2, 'b')")
    p.pull("pc-1")
    for v in ("v1", "v2", "v3"):
        p.sql(p.apps["pc-1"], "update patients set phone = %s where id = 1", (v,))
    pc = p.pcs["pc-1"]
    out = CliRunner().invoke(cli.main, ["push", "--json", "--local", pc.local, "--cloud", pc.cloud])
    print("\nCLI", out.exit_code, out.output)
    doc = json.loads(out.output)
    errors = []
    if doc["changes"] != 3:
        errors.append(f"--json changes: {doc['changes']!r}")
    for v in ("w1", "w2"):
        p.sql(p.apps["pc-1"], "update patients set phone = %s where id = 2", (v,))
    try:  # a log without a terminal: a progress line at every chunk
        sync.push(pc.settings(), progress=Bar(interval=0))  # stderr is no terminal here: lines
    except Exception as exc:  # noqa: BLE001
        errors.append(f"push with progress lines: {type(exc).__name__}: {exc}")
    print(p.sql(pc.local, "select last_error from ccsync.state"))
    print("ERRORS", errors)
    assert errors == []


def _aba(p, first):
    """pc-1 changes a phone and changes it back (A->B->A) around pc-2's change of the same phone."""
    p.sql(p.cloud, "insert into patients (id, name, phone) values (1, 'a', 'A'), (2, 'b', 'A')")
    p.sync_all(1)
    for pid in (1, 2):
        p.sql(p.apps["pc-1"], "update patients set phone = 'B' where id = %s", (pid,))
        p.sql(p.apps["pc-2"], "update patients set phone = 'Y' where id = %s", (pid,))
        p.sql(p.apps["pc-1"], "update patients set phone = %s where id = %s", ("A" if pid == 1 else "C", pid))
    order = ("pc-1", "pc-2") if first == "pc-1" else ("pc-2", "pc-1")
    done = [p.push(n) for n in order]
    p.sync_all()
    p.assert_converged()
    return ([{k: d.get(k, 0) for k in ("conflicts", "refused")} for d in done], p.rows(p.cloud), sorted(_records(p)))  # (record order: merged path, pre-existing)


@pytest.mark.one_version
@pytest.mark.parametrize("policy", ["manual", "latest-wins"])
@pytest.mark.parametrize("first", ["pc-1", "pc-2"])
def test_aba_around_another_pcs_change(make_practice, monkeypatch, policy, first):
    fast = _aba(make_practice(nodes=("pc-1", "pc-2"), policy=policy), first)
    monkeypatch.setenv("CCSYNC_REFERENCE", "1")
    reference = _aba(make_practice(nodes=("pc-1", "pc-2"), policy=policy), first)
    print("\nFAST     ", fast, "\nREFERENCE", reference)
    assert fast == reference
