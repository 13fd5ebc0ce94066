"""The node's state, decided in one place: the status light, the mode, and which database the application uses.

`ccsync status` (human and `--json`), the panel's light, `reconciler.service.database_for_app()` and the Sumehr
publisher all call `current()` (or `of_settings()`); none decides on its own. The facts come from the node's
database (what the running service stored: its mode, why it is offline, how many syncs failed in a row, the
progress of a long sync; whether a service holds this node's lock) and, when no service runs, from a probe of
the cloud. `decide()` is the rule itself, a pure function of those facts.

The light has four states:

- online: a service runs, it reaches the cloud, no sync is running a backlog, syncs succeed;
- synchronizing: a service runs and pushes or pulls a backlog (after an outage, or a large transaction);
- offline: this PC's database is down, or the running service cannot reach the cloud (unreachable, login
  refused, ccsync not ready there);
- attention: no service runs on this PC, or syncs failed FAILING times in a row while the cloud answered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import psycopg

from . import db
from .reasons import Reason

LOCK_KEY = 0x63637372  # one service per node database (session advisory lock)
PROBE_TIMEOUT = 2
FAILING = 3  # failed syncs in a row (the cloud answering) that need a person


class State(StrEnum):
    ONLINE = "online"
    SYNCHRONIZING = "synchronizing"
    OFFLINE = "offline"
    ATTENTION = "attention"


def lock_holder(node: psycopg.Connection) -> int | None:
    """The backend pid of the running service of this node, if any."""
    row = node.execute(
        "select pid from pg_locks where locktype = 'advisory' and granted and objid = %s and database = "
        "(select oid from pg_database where datname = current_database())",
        (LOCK_KEY,),
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Facts:
    """What the node's database says, read in one query."""

    service: bool  # a `ccsync run` holds this node's lock
    stored: str  # the mode the service stored: online, synchronizing, offline
    since: dt.datetime | None  # when it stored it
    reason: str | None  # why it is offline (a Reason code), as it stored it
    failures: int  # syncs failed in a row
    syncing: bool  # a long sync reports its progress


@dataclass(frozen=True)
class Mode:
    state: State  # the light
    mode: str  # online, synchronizing, offline (the key `mode` of `ccsync status --json`)
    use: str  # the database the application should use now: cloud or local
    service: bool  # a `ccsync run` serves this node
    reachable: bool | None  # the cloud answered a probe (None: not probed, the service's facts were used)
    reason: Reason | None  # why the state is not online
    since: dt.datetime | None  # since when the state holds, where known
    cloud_reason: Reason | None = None  # why the cloud is out of reach, when it is known to be

    @property
    def offline(self) -> bool:
        """The cloud is out of reach for this PC (nothing can be sent to it or to the HUB now)."""
        return self.mode == "offline"


def decide(facts: Facts | None, *, reachable: bool | None, probe_reason: Reason | None = None) -> Mode:
    """The rule. `facts` None: this PC's database is down. Without a service the cloud's answer to a probe
    says which database the application uses; with one, the mode the service stored (it watches the cloud
    all the time). The application uses the cloud whenever it is known to be reachable and no backlog of
    this PC is being synchronized: never a stale replica while the cloud answers."""
    if facts is None:
        return Mode(State.OFFLINE, "offline", "cloud" if reachable else "local", False, reachable,
                    Reason.LOCAL_DOWN, None, probe_reason)
    if not facts.service:
        mode = "online" if reachable else "offline"
        return Mode(State.ATTENTION, mode, "cloud" if reachable else "local", False, reachable,
                    Reason.SERVICE_STOPPED, None, None if reachable else probe_reason or Reason.CLOUD_UNREACHABLE)
    use = "cloud" if facts.stored == "online" else "local"
    if facts.stored == "offline" and facts.reason == Reason.SERVICE_STOPPED:
        # what the service before this one stored when it stopped: this one is still reaching the cloud
        return Mode(State.SYNCHRONIZING, "synchronizing", "local", True, None, None, facts.since)
    if facts.stored == "offline":
        reason = Reason(facts.reason) if facts.reason in set(Reason) else Reason.CLOUD_UNREACHABLE
        return Mode(State.OFFLINE, "offline", "local", True, None, reason, facts.since, reason)
    mode = "synchronizing" if facts.syncing else facts.stored
    if facts.failures >= FAILING:
        return Mode(State.ATTENTION, mode, use, True, None, Reason.SYNC_FAILING, None)
    if mode == "synchronizing":
        return Mode(State.SYNCHRONIZING, mode, use, True, None, None, facts.since)
    return Mode(State.ONLINE, "online", "cloud", True, None, None, facts.since)


def probe(cloud_dsn: str | None, timeout: float = PROBE_TIMEOUT) -> Reason | None:
    """None when the cloud answers a connection (nothing else is asked of it), else why it does not."""
    why, cloud = reach(cloud_dsn, timeout)
    if cloud is not None:
        cloud.close()
    return why


def reach(cloud_dsn: str | None, timeout: float = PROBE_TIMEOUT) -> tuple[Reason | None, psycopg.Connection | None]:
    """The probe, keeping the connection it opened: (None, the connection) when the cloud answers, else (why
    it does not, None). The caller closes the connection."""
    if not cloud_dsn:
        return Reason.CLOUD_UNREACHABLE, None
    try:
        return None, db.connect(cloud_dsn, role="cloud database", connect_timeout=max(1, int(timeout)))
    except db.Refused:
        return Reason.CLOUD_REFUSED, None
    except db.CcsyncError:
        return Reason.CLOUD_UNREACHABLE, None


def facts(node: psycopg.Connection) -> Facts:
    stored, since, reason, failures, syncing = node.execute(
        "select s.mode, s.mode_since, s.reason, s.failures, p.what is not null from ccsync.state s, ccsync.progress p"
    ).fetchone()
    return Facts(lock_holder(node) is not None, stored, since, reason, failures, syncing)


def current(node: psycopg.Connection, cloud_dsn: str | None, *, timeout: float = PROBE_TIMEOUT,
            probe=probe) -> Mode:
    """The state of the node whose database `node` is, probing the cloud only when no service runs (`probe`:
    how; `reconciler.status` keeps the probe's connection for its own count)."""
    f = facts(node)
    if f.service:
        return decide(f, reachable=None)
    why = probe(cloud_dsn, timeout)
    return decide(f, reachable=why is None, probe_reason=why)


def when_local_is_down(cloud_dsn: str | None, *, timeout: float = PROBE_TIMEOUT) -> Mode:
    """The state when this PC's database cannot be reached (the application may still use the cloud)."""
    why = probe(cloud_dsn, timeout)
    return decide(None, reachable=why is None, probe_reason=why)
