"""A patient's Sumehr state as pure functions (no database, no HUB): what a list shows, and what the publisher
records instead of sending a claimed patient's latest document."""

from __future__ import annotations

from . import kmehr
from .tables import Document, PatientRow

# What a person sees, in the order a list sorted by state shows them: the ones someone must look at first.
STATES = ("invalid", "failing", "waiting", "up_to_date", "no_consent")
ATTENTION = ("invalid", "failing")  # not up to date for a reason someone must look at
OFFLINE_REASON = "offline: the cloud cannot be reached; published once it can"
LEGACY_INVALID = "invalid Sumehr: "  # how revisions up to 0005 marked an invalid document (state failed)
SHARED_INSS = ("the INSS in this patient's record is in another patient's record too: correct or merge the "
               "records")
NO_NIHII = "no author NIHII (11 digits) in the Sumehr: set [hub] author_nihii in ccsync.toml"


def shown(r: PatientRow, *, offline: bool) -> dict:
    """One patient as listed: the replicated state row corrected by what the documents say now.

    A state row about an older version than the latest document says nothing about the latest one: that
    patient is waiting (its attempts start again), whatever the row's state was.
    """
    latest = max(v for v in (r.latest, r.s_latest) if v is not None)
    current = r.s_state is not None and r.s_latest == latest
    attempts, last_attempt, next_attempt = r.attempts or 0, r.last_attempt, r.next_attempt
    invalid = r.s_state == "invalid" or (r.s_state == "failed" and (r.s_reason or "").startswith(LEGACY_INVALID))
    if not r.consent:
        state, reason, since = "no_consent", None, None
        attempts, last_attempt, next_attempt = 0, None, None
    elif r.hub_version is not None and r.hub_version >= latest:
        state, reason, since = "up_to_date", None, r.s_since if r.s_state == "up_to_date" else None
    elif current and invalid:
        state, reason, since = "invalid", (r.s_reason or "").removeprefix(LEGACY_INVALID), r.s_since
    elif current and r.s_state == "failed":
        state, reason, since = "failing", r.s_reason, r.s_since
    else:  # never tried yet: a version the publisher has not seen (written offline, or just now), or pending
        state, reason, since = "waiting", OFFLINE_REASON if offline else None, r.first_newer or r.s_since
        if not current:
            attempts, last_attempt, next_attempt = 0, None, None
    return {"patient": r.patient, "name": r.name, "latest_version": latest, "hub_version": r.hub_version,
            "state": state, "reason": reason, "since": since, "attempts": attempts, "last_attempt": last_attempt,
            "next_attempt": next_attempt, "hub_transaction_id": r.hub_transaction_id}


def instead_of_sending(doc: Document, hub_version: int | None, max_bytes: int) -> tuple[str, str | None] | None:
    """The outcome to record without sending (`nothing`: the HUB has this version or a newer one; `invalid`:
    not a publishable Sumehr of this very patient, with the reasons), or None: the document may be sent.

    A document larger than `max_bytes` is not validated (nor read: its text is None then)."""
    if hub_version is not None and doc.version <= hub_version:
        return "nothing", None  # an older document never replaces a newer one on the HUB
    if doc.size is not None and doc.size > max_bytes:
        problems = [f"the document is larger than a Sumehr may be (more than {max_bytes} bytes: "
                    "[sumehr] max_document_bytes)"]
    else:
        problems = kmehr.validate_sumehr(doc.document, doc.inss or "")
    if not problems and doc.inss_shared:  # the INSS does not tell this patient from another one
        problems = [SHARED_INSS]
    return ("invalid", "; ".join(problems)) if problems else None


def author_problem(nihii: str | None) -> str | None:
    """Why a request cannot be sent with this author NIHII (it names the request): None when it is 11 digits."""
    if nihii and nihii.isascii() and nihii.isdigit() and len(nihii) == 11:
        return None
    return NO_NIHII
