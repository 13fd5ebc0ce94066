"""How values look on the pages: times in the practice's zone, logical clocks, keys, cell values, the words of
each state and conflict kind in the reader's language, and a conflict laid out field by field."""

from __future__ import annotations

import datetime as dt
import decimal
import json

from flask import current_app, g
from markupsafe import Markup, escape
from flask_babel import format_datetime, format_decimal, format_timedelta, gettext as _, lazy_gettext as _l

from reconciler import clock, localtime
from reconciler.refusal_reasons import variant

# the light's states, and why a state is not online (the codes of reconciler.reasons)
STATES = {
    "online": _l("Online"),
    "synchronizing": _l("Synchronizing"),
    "offline": _l("Offline"),
    "attention": _l("Attention needed"),
    "unknown": _l("Status unknown"),
}
HINTS = {
    "online": _l("Connected to the cloud: the application works on the cloud database, and this PC's copy "
                 "follows it."),
    "synchronizing": _l("Catching up with the cloud: changes are being pushed and pulled."),
    "offline": _l("The application works on this PC's copy; every change is sent when the cloud is back."),
    "attention": _l("Something needs a person: see the reason below."),
    "unknown": _l("The panel cannot read this PC's status right now."),
}
REASONS = {
    "cloud_unreachable": _l("The cloud cannot be reached (no network, or its server is down). ccsync keeps "
                            "trying by itself."),
    "cloud_refused": _l("The cloud refused this PC's login (user name, password or access rules): an "
                        "administrator must fix this PC's settings."),
    "cloud_not_ready": _l("The cloud database does not match this PC's ccsync (missing there, or another version): "
                          "an administrator must upgrade one of them, as the last error says."),
    "local_down": _l("This PC's database is down: check that its PostgreSQL service runs."),
    "service_stopped": _l("The sync service is not running on this PC: nothing is synchronized until it is "
                          "started again."),
    "sync_failing": _l("Synchronization keeps failing: see the last error, and the service's log."),
    "connection_lost": _l("The connection to a database was lost during a sync; the work in flight was rolled "
                          "back and is retried."),
    "sync_error": _l("A sync failed."),
    "internal": _l("An unexpected error stopped a sync; the details are in the log."),
}

# per conflict kind: its name, what happened, and what each decision does to the record
KINDS = {
    "update_update": {
        "label": _l("changed on both sides"),
        "lead": _l("This PC and the cloud changed the same field of this record. The cloud's version is in "
                   "place everywhere until you decide; fields changed on one side only were merged."),
        "local": _l("Write this PC's values of the conflicting fields on the cloud and every PC. Fields changed "
                    "on one side only keep their merged value."),
        "cloud": _l("Keep the cloud's version, already in place everywhere. This PC's values of the conflicting "
                    "fields are dropped (they stay readable in this record)."),
        "merged": _l("Choose, field by field, this PC's value, the cloud's, or another one."),
        "button_local": _l("Use this PC's values"), "button_cloud": _l("Keep the cloud's version"),
    },
    "update_delete": {
        "label": _l("changed here, deleted on the cloud"),
        "lead": _l("This PC changed the record while it was deleted on the cloud. It stays deleted everywhere "
                   "until you decide."),
        "local": _l("Bring the record back everywhere, as this PC has it (every field, not only the changed "
                    "ones)."),
        "cloud": _l("The record stays deleted everywhere. This PC's changes are dropped (they stay readable in "
                    "this record)."),
        "merged": _l("Bring the record back everywhere, with values you choose field by field."),
        "button_local": _l("Bring the record back"), "button_cloud": _l("Leave it deleted"),
    },
    "delete_update": {
        "label": _l("deleted here, changed on the cloud"),
        "lead": _l("This PC deleted the record while it was changed on the cloud. The cloud's version is in "
                   "place everywhere until you decide."),
        "local": _l("Delete the record everywhere, as this PC did. The cloud's changes are dropped (they stay "
                    "readable in this record)."),
        "cloud": _l("Keep the record everywhere, with the cloud's changes: this PC's deletion is undone."),
        "merged": _l("Keep the record everywhere, with values you choose field by field."),
        "button_local": _l("Delete the record"), "button_cloud": _l("Keep the record"),
    },
    "insert_insert": {
        "label": _l("created on both sides"),
        "lead": _l("This PC and the cloud each created a record with the same key. The cloud's version is in "
                   "place everywhere until you decide."),
        "local": _l("Replace the cloud's values of the differing fields by this PC's, everywhere."),
        "cloud": _l("Keep the cloud's record, already in place everywhere. This PC's record is dropped (it stays "
                    "readable in this record)."),
        "merged": _l("Choose, field by field, this PC's value, the cloud's, or another one."),
        "button_local": _l("Use this PC's values"), "button_cloud": _l("Keep the cloud's record"),
    },
    "refused": {
        "label": _l("refused by the cloud"),
        "lead": _l("The cloud's rules refused a whole transaction of this PC (the reason is below). None of it was "
                   "written anywhere, and this PC's records were brought back in line with the cloud. Its changes "
                   "are kept here until you decide."),
        "discard": _l("Drop the refused changes. They stay readable in this record."),
        "apply-again": _l("Write the changes again on this PC as a new transaction; the next sync sends them to the "
                          "cloud, which checks them again. Fix the cause first (the reason says which)."),
        "button_discard": _l("Drop the changes"), "button_apply-again": _l("Apply them again"),
    },
}
# a refused record's reason (the codes of reconciler/refusal_reasons.py; tests/web/test_views.py holds the two
# tables to each other): what the refused change was, then why
REFUSED_SUBJECTS = {"I": _l("new row in %(subject)s"), "U": _l("change to a row of %(subject)s"),
                    "D": _l("deletion of a row of %(subject)s"), "T": _l("emptying of %(subject)s"),
                    "": _l("change to %(subject)s")}
REFUSALS = {
    "parent_missing": _l("The cloud refused this PC's %(what)s: the row of %(parent)s it refers to is not on the "
                         "cloud (deleted there)."),
    "still_referenced": _l("The cloud refused this PC's %(what)s: rows of %(child)s on the cloud still refer to it."),
    "still_referenced_any": _l("The cloud refused this PC's %(what)s: rows of another table on the cloud still "
                               "refer to it."),
    "unique": _l("The cloud refused this PC's %(what)s: another row of %(table)s on the cloud already has the same "
                 "%(columns)s."),
    "unique_any": _l("The cloud refused this PC's %(what)s: another row of %(table)s on the cloud already has the "
                     "same unique value."),
    "not_null": _l("The cloud refused this PC's %(what)s: %(table)s.%(column)s may not be empty on the cloud."),
    "check": _l("The cloud refused this PC's %(what)s: it breaks the cloud's check %(constraint)s on %(table)s."),
    "bad_value": _l("The cloud refused this PC's %(what)s: a value does not fit the cloud's column type "
                    "(SQLSTATE %(sqlstate)s)."),
    "constraint": _l("The cloud refused this PC's %(what)s: %(constraint)s on %(table)s refused it "
                     "(SQLSTATE %(sqlstate)s)."),
    "constraint_any": _l("The cloud refused this PC's %(what)s: a constraint on %(table)s refused it "
                         "(SQLSTATE %(sqlstate)s)."),
    "cascade_removed": _l("The cloud refused this PC's %(what)s: the cloud would have removed rows of %(child)s that "
                         "this PC had not seen (written on the cloud or by another PC since its last pull)."),
    "cascade_unlinked": _l("The cloud refused this PC's %(what)s: the cloud would have unlinked rows of %(child)s "
                          "that this PC had not seen (written on the cloud or by another PC since its last pull)."),
    "already_decided": _l("The cloud refused this PC's decision: record %(record)s was already decided "
                          "(%(resolution)s) by %(by)s at %(at)s. This decision was not applied."),
    "unknown_record": _l("The cloud refused this PC's decision: record %(record)s does not exist on the cloud."),
    "not_closing": _l("The cloud refused this PC's decision: record %(record)s can only be closed by a decision."),
    "decision": _l("The cloud refused this PC's decision: %(message)s"),
}


def refusal(c: dict):
    """A refused record's reason in the reader's language (names and codes isolated in <bdi>); a reason stored
    as a sentence, before the codes, as it is."""
    doc = c.get("reason_code")
    if not doc:
        return c.get("reason") or "—"
    values = {k: "" if v is None else str(v) for k, v in doc.items() if k != "code"}
    if "resolution" in values:
        values["resolution"] = resolution(values["resolution"])
    if "at" in values:
        values["at"] = when(values["at"].replace(" UTC", "+00:00"))
    values["what"] = sentence(str(REFUSED_SUBJECTS.get(values.get("op", ""), REFUSED_SUBJECTS[""])),
                              subject=values.get("subject", ""))
    needed = {k: v for k, v in values.items() if f"%({k})s" in str(REFUSALS[variant(doc)])}
    return sentence(str(REFUSALS[variant(doc)]), **needed)


# reasons whose stored text (ccsync's own sentence, saying what to do) is shown rather than the general words
OWN_WORDS = ("sync_error", "cloud_not_ready")
RESOLUTIONS = {"kept local": _l("this PC's version"), "kept cloud": _l("the cloud's version"),
               "kept merged": _l("a merged version"), "discarded": _l("changes dropped"),
               "applied again": _l("changes applied again")}
OPERATIONS = {"I": _l("new record"), "U": _l("change"), "D": _l("deletion"), "T": _l("table emptied")}
REVISITED = "revisited: "  # the engine's prefix of a decision made again


def resolution(text: str | None):
    """A stored resolution in the reader's words; a decision made again says so."""
    if not text:
        return "—"
    again = text.startswith(REVISITED)
    words = RESOLUTIONS.get(text.removeprefix(REVISITED))
    if words is None:
        return text  # a policy's own words (for instance "policy cloud-wins: kept cloud")
    return Markup(escape(_("%(what)s (decided again)"))) % {"what": words} if again else words
DIRECTIONS = {"push": _l("push"), "pull": _l("pull"), "sync": _l("sync"), "init": _l("initial copy"),
              "login": _l("login"), "offline": _l("offline")}
SUMEHR_STATES = {"up_to_date": _l("up to date"), "pending": _l("pending"), "failed": _l("failed")}


def sentence(message: str, /, **values) -> Markup:
    """A translated sentence (its %(name)s placeholders unfilled) with values from the data, each isolated in
    <bdi>: a right-to-left override in a patient's name turns only the name around, never the sentence."""
    return Markup(escape(message)) % {k: v if isinstance(v, Markup) else Markup("<bdi>{}</bdi>").format(v)
                                      for k, v in values.items()}


def _moment(value) -> dt.datetime | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    try:
        return localtime.parse(value)
    except ValueError:
        return None


def when(value) -> str:
    """A stored time in the practice's time zone, to the second, the zone named."""
    moment = _moment(value)
    if moment is None:
        return "—" if value in (None, "") else str(value)
    return format_datetime(moment, "yyyy-MM-dd HH:mm:ss zzz")


def short(value) -> str:
    """Today's times as the time of day only; other days with their date, to the minute."""
    moment = _moment(value)
    if moment is None:
        return when(value)
    tz = localtime.zone(_settings())
    if moment.astimezone(tz).date() == dt.datetime.now(tz).date():
        return format_datetime(moment, "HH:mm:ss")
    return format_datetime(moment, "yyyy-MM-dd HH:mm")


def iso(value) -> str:
    moment = _moment(value)
    return moment.isoformat() if moment else ""


def age(value, now: dt.datetime | None = None) -> str:
    """How long ago (or from now), in the reader's language ("il y a 3 minutes")."""
    moment = _moment(value)
    if moment is None:
        return ""
    return format_timedelta(moment - (now or dt.datetime.now(dt.timezone.utc)), add_direction=True)


def span(seconds) -> str:
    """A duration in the reader's language ("12 minutes")."""
    if seconds is None:
        return ""
    return format_timedelta(dt.timedelta(seconds=float(seconds)), threshold=1.5)


def hlc(value, compact: bool = False) -> str:
    """A hybrid logical clock (epoch ms << 16 + counter) as the wall-clock time it carries, to the
    millisecond (compact: without the date when it is today)."""
    if value is None:
        return "—"
    value = int(value)
    tz = localtime.zone(_settings())
    moment = clock.wall_time(value).astimezone(tz)
    counter = clock.counter(value)
    today = compact and moment.date() == dt.datetime.now(tz).date()
    text = moment.strftime("%H:%M:%S." if today else "%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return f"{text} +{counter}" if counter else text


def cell(value) -> str:
    """A column value as text: strings as they are, everything else as JSON (NULL for null)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def pk(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return cell(value)


def kind_label(kind: str) -> str:
    return str(KINDS[kind]["label"]) if kind in KINDS else kind


def duration(seconds) -> str:
    if seconds is None:
        return "…"
    seconds = float(seconds)
    if seconds < 1:
        return f"{format_decimal(round(seconds * 1000))} ms"
    if seconds < 120:
        return f"{format_decimal(round(seconds, 1))} s"
    return span(seconds)


def _settings():
    return current_app.extensions["ccsync.settings"]


# -- a conflict, field by field -----------------------------------------------------------------------------
def diff_columns(diff, names) -> set[str]:
    """The columns a stored deepdiff names (paths like root['phone'] or root['tags'][0])."""
    paths: list[str] = []
    for entries in (diff or {}).values():
        paths.extend(entries if isinstance(entries, list) else list(entries or {}))
    return {n for n in names if any(p == f"root[{n!r}]" or p.startswith(f"root[{n!r}][") for p in paths)}


def conflict_fields(c: dict, order: list[str] | None = None) -> list[dict]:
    """One entry per column: its base, local and cloud values, whether it conflicts or merely differs, and
    whether a merge may choose its value (every column but the key, of a record that survives somewhere)."""
    local, cloud, base = c.get("local_row"), c.get("cloud_row"), c.get("base") or {}
    keys = c.get("pk") or {}
    names = list(dict.fromkeys([*(order or []), *sorted(set(local or {}) | set(cloud or {}) | set(base))]))
    names = [n for n in names if n in (local or {}) or n in (cloud or {}) or n in base]
    if c.get("diff") is not None:
        differing = diff_columns(c["diff"], names)
    else:
        differing = {n for n in names if (local or {}).get(n) != (cloud or {}).get(n)}
    conflicting = set(c.get("columns") or [])
    rows = []
    for n in names:
        state = "conflict" if n in conflicting else "differs" if n in differing else "same"
        rows.append({
            "name": n, "state": state, "key": n in keys,
            "base": base.get(n), "in_base": n in base,
            "local": None if local is None else local.get(n), "in_local": local is not None and n in local,
            "cloud": None if cloud is None else cloud.get(n), "in_cloud": cloud is not None and n in cloud,
            "choosable": n not in keys and (local is not None or cloud is not None)
                         and (state != "same" or local is None or cloud is None),
        })
    rest = [r for r in rows if not r["key"]]
    if order is None:  # no table order known: what needs a decision first
        rank = {"conflict": 0, "differs": 1, "same": 2}
        rest.sort(key=lambda r: rank[r["state"]])
    return [r for r in rows if r["key"]] + rest


def column_order(conn, table_name: str) -> list[str] | None:
    """The table's columns in their defined order (None when the table is gone)."""
    rows = conn.execute(
        "select a.attname from pg_attribute a where a.attrelid = to_regclass(%s) and a.attnum > 0 "
        "and not a.attisdropped order by a.attnum",
        (table_name,),
    ).fetchall()
    return [r[0] for r in rows] or None


def init_app(app) -> None:
    for name, fn in {"when": when, "short": short, "iso": iso, "age": age, "hlc": hlc, "cell": cell, "pk": pk,
                     "kind_label": kind_label, "duration": duration, "span": span,
                     "resolution": resolution, "refusal": refusal}.items():
        app.add_template_filter(fn, name)

    @app.context_processor
    def panel_globals():
        return {"current_user": g.get("user"), "poll_ms": current_app.config["STATUS_POLL_MS"],
                "kinds": KINDS, "states": STATES, "hints": HINTS, "reasons": REASONS,
                "resolutions": RESOLUTIONS, "operations": OPERATIONS,
                "own_words": OWN_WORDS, "directions": DIRECTIONS, "sumehr_states": SUMEHR_STATES,
                "plain": lambda words: {k: str(v) for k, v in words.items()}}
