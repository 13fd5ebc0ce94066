"""The pure pieces of planning, without PostgreSQL: chunk cutting, what selects a chunk, and apply order."""

from hypothesis import given, strategies as st

from reconciler.engine import drain, journal


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
    journal._in_apply_order(rows, ())  # a whole window, not listed: each transaction's last entry worked out
    assert [r.id for r in rows] == [1, 3, 4, 2, 5]  # A (ends at 3) first; in B a trigger's entry 2 after its cause 4


def test_listed_transactions_give_the_apply_order_the_rows_would():
    ch = lambda id, txid, depth=1: journal.Change(id, txid, "public.t", "U", f'{{"id": {id}}}', False, None, depth)
    rows = [ch(5, 200), ch(1, 100), ch(2, 200, 2), ch(3, 100), ch(4, 200)]
    listed = list(rows)
    journal._in_apply_order(rows, ())
    journal._in_apply_order(listed, (journal.Txn(100, 3, 2), journal.Txn(200, 5, 3)))
    assert listed == rows


WINDOW = journal.Window("10:20:", "10:30:")


def test_a_whole_window_is_read_through_the_window_not_a_list():
    chunk = journal.Chunk.whole_window()
    assert (chunk.whole, chunk.last, chunk.end, chunk.txns) == (True, True, 0, ())
    params = journal._chunk_params(WINDOW, chunk, extra=1)
    assert (params["first"], params["last"], params["txids"], params["extra"]) == (None, None, None, 1)


def test_a_whole_window_listed_anyway_is_still_read_through_the_window():
    txns = [journal.Txn(12, 40, 3), journal.Txn(11, 45, 2)]
    chunk = journal.Chunk.whole_window(txns)
    assert (chunk.whole, chunk.last, chunk.end, chunk.txids) == (True, True, 45, [12, 11])
    assert journal._chunk_params(WINDOW, chunk)["txids"] is None


def test_a_part_of_a_window_is_read_through_the_list_of_its_transactions():
    chunk = journal.Chunk.of([journal.Txn(12, 40, 3), journal.Txn(11, 45, 2)], last=False)
    assert (chunk.whole, chunk.last, chunk.end) == (False, False, 45)
    params = journal._chunk_params(WINDOW, chunk)
    assert (params["first"], params["last"], params["txids"]) == ("11", "12", "12,11")
    assert (params["since"], params["upto"]) == ("10:20:", "10:30:")


def test_the_next_chunk_is_the_whole_window_only_when_it_holds_every_transaction_and_none_was_applied():
    txns = [journal.Txn(1, 10, 5), journal.Txn(2, 20, 5), journal.Txn(3, 30, 5)]
    assert drain._next_chunk(txns, 100, 0) == journal.Chunk.whole_window(txns)
    assert not drain._next_chunk(txns, 100, 7).whole  # a resumed window: some of it is applied
    first = drain._next_chunk(txns, 10, 0)
    assert (first.whole, first.last, first.end, first.txids) == (False, False, 20, [1, 2])
    rest = drain._next_chunk(txns[2:], 10, 20)
    assert (rest.whole, rest.last, rest.end, rest.txids) == (False, True, 30, [3])
