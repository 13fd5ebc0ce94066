"""How values look on the pages: times, logical clocks, keys, cell values, and a conflict laid out field by field."""

from __future__ import annotations

import datetime as dt
import decimal
import json

from flask import current_app, g

from reconciler import clock

KINDS = {
    "update_update": ("changed on both sides",
                      "This PC and the cloud changed the same field of this record. The cloud's version is in "
                      "place everywhere until you decide; fields changed on one side only were merged."),
    "update_delete": ("changed here, deleted on the cloud",
                      "This PC changed the record while it was deleted on the cloud. It stays deleted everywhere "
                      "until you decide."),
    "delete_update": ("deleted here, changed on the cloud",
                      "This PC deleted the record while it was changed on the cloud. The cloud's version is in "
                      "place everywhere until you decide."),
    "insert_insert": ("created on both sides",
                      "This PC and the cloud each created a record with the same key. The cloud's version is in "
                      "place everywhere until you decide."),
}


def _as_datetime(value) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def when(value) -> str:
    """A stored time in this PC's time zone, to the second."""
    moment = _as_datetime(value)
    if moment is None:
        return "—" if value in (None, "") else str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def short(value) -> str:
    """Today's times as the time of day only; other days with their date, to the minute."""
    moment = _as_datetime(value)
    if moment is None:
        return when(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    if moment.date() == dt.datetime.now(moment.tzinfo).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def iso(value) -> str:
    moment = _as_datetime(value)
    return moment.isoformat() if moment else ""


def age(value, now: dt.datetime | None = None) -> str:
    """How long ago, in words a person reads at a glance ("3 min ago", "in 20 s")."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    now = now or dt.datetime.now(moment.tzinfo or None)
    if moment.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86400:
        text = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        text = f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    return f"in {text}" if future else f"{text} ago"


def hlc(value, compact: bool = False) -> str:
    """A hybrid logical clock (epoch ms << 16 + counter) as the wall-clock time it carries, to the
    millisecond (compact: without the date when it is today)."""
    if value is None:
        return "—"
    value = int(value)
    moment = clock.wall_time(value).astimezone()
    counter = clock.counter(value)
    today = compact and moment.date() == dt.datetime.now(moment.tzinfo).date()
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
    return KINDS.get(kind, (kind, ""))[0]


def duration(seconds) -> str:
    if seconds is None:
        return "running"
    seconds = float(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


# -- a conflict, field by field -----------------------------------------------------------------------------
def diff_columns(diff, names) -> set[str]:
    """The columns a stored deepdiff names (paths like root['phone'] or root['tags'][0])."""
    paths: list[str] = []
    for entries in (diff or {}).values():
        paths.extend(entries if isinstance(entries, list) else list(entries or {}))
    return {n for n in names if any(p == f"root[{n!r}]" or p.startswith(f"root[{n!r}][") for p in paths)}


def conflict_fields(c: dict, order: list[str] | None = None) -> list[dict]:
    """One entry per column: its base, local and cloud values, and whether it conflicts or merely differs."""
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
            "choosable": state != "same" and n not in keys and local is not None and cloud is not None,
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
                     "kind_label": kind_label, "duration": duration}.items():
        app.add_template_filter(fn, name)

    @app.context_processor
    def panel_globals():
        return {"current_user": g.get("user"), "poll_ms": current_app.config["STATUS_POLL_MS"],
                "kinds": KINDS}
