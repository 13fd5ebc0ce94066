"""The node's status for people and scripts: `ccsync status` (human and `--json`) and the panel's light.

The state comes from the one rule in `reconciler.mode`; this module adds the counts and the words around it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from . import db as _db, mode as _mode, reasons
from .config import Settings
from .engine import pull as _pull
from .engine.sides import sides_of
from .errors import CcsyncError, Unreachable
from .sumehr.publisher import summary as sumehr_summary

KEYS = ("mode", "node", "pending_push", "pending_pull", "open_conflicts", "hub_failures", "hub_waiting",
        "hub_configured", "last_sync_at", "last_error", "use", "service", "mode_since", "progress", "state", "reason",
        "reason_text", "state_since", "failures", "last_error_code", "last_error_at", "cloud_reason")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def describe(m: _mode.Mode) -> str | None:
    """The state's reason as one English sentence (the panel translates the code instead)."""
    text = reasons.sentence(m.reason)
    if text and m.cloud_reason and m.cloud_reason != m.reason:
        text += "; " + reasons.sentence(m.cloud_reason)
    return text


@dataclass(frozen=True)
class _Stored:
    """What the node's database stores about its syncs (ccsync.state and ccsync.progress)."""

    mode_since: dt.datetime | None
    last_sync_at: dt.datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: dt.datetime | None
    failures: int
    what: str | None
    done: int | None
    total: int | None


def current(settings: Settings, *, conn: psycopg.Connection | None = None, probe_timeout: float = 2.0) -> dict:
    """The node's status. `conn`: an open connection to the node's database (the panel's); without one, one is
    opened and closed here, and a database that cannot be reached is a state of its own (local_down).

    Keys: mode (online, synchronizing, offline), node, pending_push, pending_pull (null while offline),
    open_conflicts, hub_failures (Sumehrs not on the HUB for a reason someone must look at; null when Sumehr
    publication is not configured), hub_waiting (Sumehrs waiting for their first try or for the cloud),
    hub_configured, last_sync_at, last_error, use ('cloud' or 'local'), service (a `ccsync run` serves this
    node), mode_since, progress ({what, done, total} while a long sync runs, else null); and
    state (the light: online, synchronizing, offline, attention), reason (why it is not online: a code),
    reason_text (the same in words), state_since, failures (syncs failed in a row), last_error_code,
    last_error_at, cloud_reason (why the cloud is out of reach, when it is known to be). Counts that cannot be
    read are null; when this PC's database is down, node is null too.
    """
    if conn is not None:
        return _read(conn, settings, probe_timeout)
    try:
        own = _db.open_local(settings.need_local())
    except Unreachable:
        m = _mode.when_local_is_down(settings.cloud, timeout=probe_timeout)
        doc = dict.fromkeys(KEYS)
        doc.update(_mode_keys(m), service=False)
        return doc
    with own:
        return _read(own, settings, probe_timeout)


def _read(conn: psycopg.Connection, settings: Settings, probe_timeout: float) -> dict:
    name = _db.identity(conn)
    reached: list[psycopg.Connection] = []  # the probe's connection to the cloud, when it made one

    def probe(cloud_dsn: str | None, timeout: float):
        why, cloud = _mode.reach(cloud_dsn, timeout)
        reached.extend([cloud] if cloud is not None else [])
        return why

    try:
        now = _mode.current(conn, settings.cloud, timeout=probe_timeout, probe=probe)
        return _counts(conn, settings, name, now, reached[0] if reached else None, probe_timeout)
    finally:
        for cloud in reached:
            cloud.close()


def _counts(conn: psycopg.Connection, settings: Settings, name: str, now: _mode.Mode,
            cloud: psycopg.Connection | None, probe_timeout: float) -> dict:
    with conn.cursor(row_factory=class_row(_Stored)) as cur:
        st = cur.execute(
            "select s.mode_since, s.last_sync_at, s.last_error, s.last_error_code, s.last_error_at, s.failures, "
            "p.what, p.done, p.total from ccsync.state s, ccsync.progress p"
        ).fetchone()
    pending_push = _db.pending_push(conn, name)
    open_conflicts = conn.execute("select count(*) from ccsync.conflicts where status = 'open'").fetchone()[0]
    hub = sumehr_summary(conn, settings)
    pending_pull = None
    if now.mode != "offline" and settings.cloud:
        pending_pull = _pending_pull(conn, cloud, settings, name, probe_timeout)
    progress = ({"what": st.what, "done": st.done, "total": st.total}
                if st.what and now.state == "synchronizing" else None)
    return {
        "node": name, "pending_push": pending_push, "pending_pull": pending_pull,
        "open_conflicts": open_conflicts, "hub_failures": hub["attention"], "hub_waiting": hub["waiting"],
        "hub_configured": hub["configured"],
        "last_sync_at": _iso(st.last_sync_at), "last_error": st.last_error, "last_error_code": st.last_error_code,
        "last_error_at": _iso(st.last_error_at), "failures": st.failures, "mode_since": _iso(st.mode_since),
        "progress": progress, **_mode_keys(now),
    }


def _mode_keys(m: _mode.Mode) -> dict:
    return {"mode": m.mode, "use": m.use, "service": m.service, "state": str(m.state),
            "reason": None if m.reason is None else str(m.reason), "reason_text": describe(m),
            "state_since": _iso(m.since), "cloud_reason": None if m.cloud_reason is None else str(m.cloud_reason)}


def _pending_pull(node: psycopg.Connection, probed: psycopg.Connection | None, settings: Settings, name: str,
                  probe_timeout: float) -> int | None:
    """The count, on the probe's connection to the cloud when there is one (else on one opened here)."""
    try:
        if probed is not None:
            cloud = _db.as_cloud(probed)
        else:
            cloud = _db.open_cloud(settings.cloud, connect_timeout=max(1, int(probe_timeout)))
    except (CcsyncError, psycopg.Error):
        return None
    try:
        return _pull.pending_count(sides_of(node, cloud, name))
    except CcsyncError:
        return None
    finally:
        cloud.close()
