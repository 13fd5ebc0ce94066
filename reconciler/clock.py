"""The hybrid logical clock's layout, in one place: (wall-clock epoch milliseconds << COUNTER_BITS) + counter.

The values are made in SQL (ccsync.hlc_next and friends); Python only reads them apart and builds the value
that a wall-clock time corresponds to (the prune cut-offs).
"""

from __future__ import annotations

import datetime as dt

COUNTER_BITS = 16


def wall_time(hlc: int) -> dt.datetime:
    """The wall-clock moment an hlc value carries (UTC)."""
    return dt.datetime.fromtimestamp((hlc >> COUNTER_BITS) / 1000, dt.timezone.utc)


def counter(hlc: int) -> int:
    return hlc & ((1 << COUNTER_BITS) - 1)


def at(moment: dt.datetime) -> int:
    """The lowest hlc value of a wall-clock moment (every change made at or after it has a value >= this)."""
    return int(moment.timestamp() * 1000) << COUNTER_BITS
