"""The pure pieces of planning, without PostgreSQL: chunk cutting and apply order."""

from hypothesis import given, strategies as st

from reconciler.engine import journal


def test_what_a_trigger_wrote_comes_after_the_statement_that_fired_it():
    # journal order: what a statement's triggers wrote (deeper) before the statement's own entries
    entries = [("audit a", 2), ("audit b", 2), ("parent", 1), ("deeper", 3), ("audit c", 2), ("other", 1)]
    assert journal.causes_first(entries, lambda e: e[1]) == [
        ("parent", 1), ("audit a", 2), ("audit b", 2), ("other", 1), ("audit c", 2), ("deeper", 3)]


@given(st.lists(st.integers(0, 3), max_size=30))
def test_causes_first_keeps_every_entry_and_the_order_of_top_level_statements(depths):
    entries = list(enumerate(depths))
    out = journal.causes_first(entries, lambda e: e[1])
    assert sorted(out) == entries
    assert [e for e in out if e[1] == 0] == [e for e in entries if e[1] == 0]


@given(st.lists(st.integers(1, 120), max_size=40), st.integers(1, 100))
def test_chunks_hold_whole_transactions_in_order_and_stay_near_the_limit(sizes, limit):
    txns = [journal.Txn(i, i * 10, n) for i, n in enumerate(sizes)]
    cut = journal.chunks(txns, limit)
    assert [t for c in cut for t in c] == txns
    for c in cut:
        assert len(c) == 1 or sum(t.entries for t in c) <= limit


def test_apply_order_follows_each_transactions_last_entry_then_causes_first():
    # two transactions written interleaved: A (ids 1, 3) ends first, so it is applied first
    ch = lambda id, txid, depth=1: journal.Change(id, txid, "public.t", "U", f'{{"id": {id}}}', False, None, depth)
    rows = [ch(5, 200), ch(1, 100), ch(2, 200, 2), ch(3, 100), ch(4, 200)]
    journal._in_apply_order(rows, None)
    assert [r.id for r in rows] == [1, 3, 4, 2, 5]  # A (ends at 3) first; in B a trigger's entry 2 after its cause 4
