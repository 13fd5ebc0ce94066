"""A patient's Sumehr state as pure functions, without PostgreSQL or a HUB: what a list shows, and what the
publisher records instead of sending."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, strategies as st

from reconciler.sumehr import state
from reconciler.sumehr.kmehr import build_sumehr
from reconciler.sumehr.tables import Document, PatientRow

INSS = "85010100123"
versions = st.integers(1, 6)
moments = st.none() | st.datetimes(timezones=st.just(timezone.utc))


@st.composite
def patients(draw):
    latest = draw(versions)
    has_row = draw(st.booleans())
    return PatientRow(
        key=1, patient="1", consent=draw(st.booleans()), name="Marie Dubois", inss=INSS, latest=latest,
        first_newer=draw(moments),
        s_latest=draw(versions) if has_row else None, hub_version=draw(st.none() | versions),
        s_state=draw(st.sampled_from(["pending", "failed", "invalid", "up_to_date"])) if has_row else None,
        s_reason=draw(st.none() | st.sampled_from(["HUB timeout", "invalid Sumehr: no patient", "bad"])),
        s_since=draw(moments), attempts=draw(st.none() | st.integers(0, 9)), last_attempt=draw(moments),
        next_attempt=draw(moments), hub_transaction_id=None)


@given(patients(), st.booleans())
def test_a_listed_state_follows_consent_the_hub_and_the_state_row_about_the_latest_version(r, offline):
    item = state.shown(r, offline=offline)
    latest = max(v for v in (r.latest, r.s_latest) if v is not None)
    assert item["state"] in state.STATES and item["latest_version"] == latest
    if not r.consent:
        assert (item["state"], item["attempts"], item["reason"]) == ("no_consent", 0, None)
    elif r.hub_version is not None and r.hub_version >= latest:
        assert item["state"] == "up_to_date" and item["reason"] is None
    elif r.s_latest != latest:  # the row is about an older version: nothing is known of the latest one yet
        assert (item["state"], item["attempts"], item["last_attempt"]) == ("waiting", 0, None)
    if item["state"] in state.ATTENTION:
        assert r.s_latest == latest and r.s_state in ("failed", "invalid")
        assert not item["reason"] or not item["reason"].startswith(state.LEGACY_INVALID)
    if item["state"] == "waiting":
        assert item["reason"] == (state.OFFLINE_REASON if offline else None)


def test_a_legacy_failed_row_that_said_invalid_is_listed_invalid_without_the_old_prefix():
    r = PatientRow(1, "1", True, None, INSS, 2, None, 2, None, "failed", "invalid Sumehr: no patient",
                   datetime(2026, 1, 1, tzinfo=timezone.utc), 1, None, None, None)
    item = state.shown(r, offline=False)
    assert (item["state"], item["reason"]) == ("invalid", "no patient")


def document(version=2, *, inss=INSS, size=None, shared=False, text=True):
    xml = build_sumehr(patient_inss=inss, first_name="Marie", last_name="Dubois", birth_date="1985-01-01",
                       sex="female", version=version)
    return Document(version, xml if text else None, size if size is not None else len(xml), INSS, shared)


@given(versions, st.none() | versions)
def test_a_version_the_hub_already_has_is_never_sent_again(version, hub_version):
    verdict = state.instead_of_sending(document(version), hub_version, 10_000_000)
    if hub_version is not None and version <= hub_version:
        assert verdict == ("nothing", None)
    else:
        assert verdict is None


def test_a_document_for_another_patient_a_shared_inss_or_an_oversized_one_is_invalid_and_never_sent():
    outcome, reason = state.instead_of_sending(document(inss="90020200245"), None, 10_000_000)
    assert outcome == "invalid" and reason
    assert state.instead_of_sending(document(shared=True), None, 10_000_000) == ("invalid", state.SHARED_INSS)
    # too large: judged by its size alone, its text not read (None here)
    outcome, reason = state.instead_of_sending(document(size=2_000, text=False), None, 1_000)
    assert outcome == "invalid" and "1000 bytes" in reason


@given(st.text(max_size=14))
def test_only_an_eleven_digit_nihii_names_a_request(nihii):
    ok = len(nihii) == 11 and nihii.isascii() and nihii.isdigit()
    assert (state.author_problem(nihii) is None) == ok
