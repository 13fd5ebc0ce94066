"""Why the cloud refused a PC's transaction: a code with its parameters, stored, and its English sentence.

A refused record's `reason` (ccsync.conflicts.reason) holds a small JSON document, {"code": ..., ...}: the code
says which rule refused it, the parameters name tables, columns, constraints, an SQLSTATE or a record, never a row
value. `english()` is the one place that words it in English (the CLI and `--json`'s `reason`); the panel words
the same codes in its reader's language (web/present.py, REFUSALS). A record written before the codes holds an
English sentence: it is shown as it is.
"""

from __future__ import annotations

import datetime as dt
import json

from . import localtime

# the operation of the refused transaction's first change to the table the reason is about
SUBJECTS = {"I": "new row in {subject}", "U": "change to a row of {subject}", "D": "deletion of a row of {subject}",
            "T": "emptying of {subject}", "": "change to {subject}"}

# one sentence per variant (a code, or a code with `_any` when its optional parameter is unknown)
SENTENCES = {
    "parent_missing": "the cloud refused this PC's {what}: the row of {parent} it refers to is not on the cloud "
                      "(deleted there)",
    "still_referenced": "the cloud refused this PC's {what}: rows of {child} on the cloud still refer to it",
    "still_referenced_any": "the cloud refused this PC's {what}: rows of another table on the cloud still refer "
                            "to it",
    "unique": "the cloud refused this PC's {what}: another row of {table} on the cloud already has the same "
              "{columns}",
    "unique_any": "the cloud refused this PC's {what}: another row of {table} on the cloud already has the same "
                  "unique value",
    "not_null": "the cloud refused this PC's {what}: {table}.{column} may not be empty on the cloud",
    "check": "the cloud refused this PC's {what}: it breaks the cloud's check {constraint} on {table}",
    "bad_value": "the cloud refused this PC's {what}: a value does not fit the cloud's column type "
                 "(SQLSTATE {sqlstate})",
    "constraint": "the cloud refused this PC's {what}: {constraint} on {table} refused it (SQLSTATE {sqlstate})",
    "constraint_any": "the cloud refused this PC's {what}: a constraint on {table} refused it (SQLSTATE {sqlstate})",
    "cascade_removed": "the cloud refused this PC's {what}: the cloud would have removed rows of {child} that this PC "
                      "had not seen (written on the cloud or by another PC since its last pull)",
    "cascade_unlinked": "the cloud refused this PC's {what}: the cloud would have unlinked rows of {child} that this PC "
                       "had not seen (written on the cloud or by another PC since its last pull)",
    "already_decided": "the cloud refused this PC's decision: record {record} was already decided ({resolution}) "
                       "by {by} at {at}: this decision was not applied",
    "unknown_record": "the cloud refused this PC's decision: record {record} does not exist on the cloud",
    "not_closing": "the cloud refused this PC's decision: record {record}: a decision can only close it",
    "decision": "the cloud refused this PC's decision: {message}",
}
# the parameter whose absence makes a code's `_any` variant
OPTIONAL = {"still_referenced": "child", "unique": "columns", "constraint": "constraint"}


def document(code: str, **params) -> str:
    """The text to store: {"code": code, **params} as JSON."""
    doc = {"code": code, **params}
    if variant(doc) not in SENTENCES:
        raise ValueError(f"no sentence for refusal code {code!r}")
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def parse(text: str | None) -> dict | None:
    """The stored document, or None for a reason stored as a sentence (records from before the codes)."""
    if not text or not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or variant(doc) not in SENTENCES:
        return None
    return doc


def variant(doc: dict) -> str:
    """The key of the sentence that words the document: its code, or its code's `_any` form."""
    code = str(doc.get("code"))
    optional = OPTIONAL.get(code)
    return f"{code}_any" if optional and not doc.get(optional) else code


def english(text: str | dict | None, tz: dt.tzinfo | None = None) -> str | None:
    """The stored reason (or its parsed document) in English: a document worded (a time in `tz`, the zone named;
    UTC without one), a sentence as it is."""
    doc = text if isinstance(text, dict) else parse(text)
    if doc is None:
        return text
    values = {k: ("" if v is None else str(v)) for k, v in doc.items()}
    if values.get("at"):
        try:
            values["at"] = localtime.text(values["at"], tz or dt.timezone.utc)
        except ValueError:
            pass  # not a time: as stored
    values["what"] = SUBJECTS.get(values.get("op", ""), SUBJECTS[""]).format(subject=values.get("subject", ""))
    return SENTENCES[variant(doc)].format_map(_Blank(values))


class _Blank(dict):
    def __missing__(self, key):
        return ""
