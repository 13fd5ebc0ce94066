"""The README's table of the status light says what reconciler.mode.decide() decides (issue 17, section 1)."""

from __future__ import annotations

import datetime as dt
import pathlib
import re

from hypothesis import given, settings, strategies as st

from reconciler import mode
from reconciler.reasons import Reason

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def light_table() -> dict[str, str]:
    """state -> the README's "when" cell, from the table under **The status light**."""
    text = README.read_text(encoding="utf-8")
    part = text[text.index("**The status light**"):]
    rows = {}
    for line in part.splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)`", cells[0]) if cells else None
        if m and len(cells) == 3:
            rows[m.group(1)] = cells[2]
    return rows


facts = st.builds(
    mode.Facts,
    service=st.booleans(),
    stored=st.sampled_from(["online", "synchronizing", "offline"]),
    since=st.none() | st.just(dt.datetime(2026, 12, 1, tzinfo=dt.UTC)),
    # what the service stores when it goes offline (reasons.of, or service_stopped when it stops); sync_failing
    # is never stored: the rule derives it from the failures
    reason=st.none() | st.sampled_from([r.value for r in Reason if r is not Reason.SYNC_FAILING])
    | st.just("no such code"),
    failures=st.integers(0, 2 * mode.FAILING),
    syncing=st.booleans(),
)


def test_the_table_names_every_state_of_the_light_and_nothing_else():
    assert set(light_table()) == {s.value for s in mode.State}


def test_the_failure_threshold_in_the_table_is_the_rules():
    rows = light_table()
    assert f"fewer than {mode.FAILING} syncs" in rows["online"]
    assert f"{mode.FAILING} syncs in a row failed" in rows["attention"]


@settings(max_examples=300, deadline=None)
@given(f=st.none() | facts, reachable=st.none() | st.booleans(),
       probe_reason=st.none() | st.sampled_from(list(Reason)))
def test_every_reason_the_rule_gives_is_named_in_its_states_row(f, reachable, probe_reason):
    decided = mode.decide(f, reachable=reachable, probe_reason=probe_reason)
    row = light_table()[decided.state.value]
    if decided.reason is not None:
        assert f"`{decided.reason.value}`" in row, (decided, row)
    if decided.state is mode.State.ONLINE:
        assert decided.reason is None and decided.use == "cloud" and decided.service
    if decided.state is mode.State.ATTENTION and decided.reason is Reason.SERVICE_STOPPED:
        assert not decided.service
    if not decided.service and f is not None:  # no service: never green, never grey for the service itself
        assert decided.state is mode.State.ATTENTION


def test_every_code_in_the_table_is_one_the_rule_can_give():
    rows = light_table()
    for state, cell in rows.items():
        for code in re.findall(r"`(\w+)`", cell):
            assert code in {r.value for r in Reason}, (state, code)
