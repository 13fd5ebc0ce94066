"""The practice's time zone: every time shown to a person (panel and CLI) is in it, with the zone named.

Set it in ccsync.toml (`[practice] timezone = "Europe/Brussels"`, an IANA name) or $CCSYNC_TIMEZONE; the
default is Europe/Brussels, where the practices are. Stored times stay timestamptz; JSON output stays ISO 8601
with its offset.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import Settings
from .errors import CcsyncError

DEFAULT_ZONE = "Europe/Brussels"


def zone_name(settings: Settings | None) -> str:
    practice = (settings.extra.get("practice") if settings else None) or {}
    if not isinstance(practice, dict):
        raise CcsyncError("practice in ccsync.toml must be a table: [practice]")
    return os.environ.get("CCSYNC_TIMEZONE") or str(practice.get("timezone") or DEFAULT_ZONE)


def zone(settings: Settings | None) -> ZoneInfo:
    name = zone_name(settings)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CcsyncError(f"unknown time zone {name!r}: set [practice] timezone in ccsync.toml to an IANA name "
                          "such as Europe/Brussels") from None


def parse(value) -> dt.datetime | None:
    """A stored time (datetime or ISO text) as an aware datetime; None when there is none."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def text(value, tz: dt.tzinfo, *, default: str = "never") -> str:
    """'2026-11-30 23:05:12 CET': to the second, in the practice's zone, the zone named."""
    moment = parse(value)
    if moment is None:
        return default
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def span(seconds: float | None) -> str:
    """A duration for people: '12 min', '3 h 05 min', '45 s'."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def since(value, now: dt.datetime | None = None) -> float | None:
    moment = parse(value)
    if moment is None:
        return None
    return ((now or dt.datetime.now(dt.timezone.utc)) - moment).total_seconds()
