"""The sync service (`ccsync run`): keeps a PC's replica current, online, offline and synchronizing.

Online, it LISTENs on both databases (a transaction that journals notifies at commit) and looks at each
journal at every notification and every POLL seconds: it pushes when the node's journal holds entries it has
not pushed, and pulls when the cloud's holds entries of the others it has not pulled (engine/news.py: one
indexed query each; its own pushes, which the cloud journals again, wake it up but start no pull). While
changes keep coming, at most one push and one pull every GATHER seconds, each taking all that committed
meanwhile. A lost cloud is noticed within seconds (connect
timeout, TCP keepalives, a probe when idle); offline it retries with capped exponential backoff, and when
the cloud is back it synchronizes (push the backlog, pull what it missed) before it is online again. The
mode lives in the node's ccsync.state, so `ccsync status`, the panel and a restarted service agree.
"""

from __future__ import annotations

import logging
import selectors
import signal
import time
from collections.abc import Callable

import psycopg

from . import db as _db, history, labels, mode, reasons
from .db import CLOUD_LINK
from .mode import LOCK_KEY, lock_holder  # noqa: F401  (lock_holder: part of the service's API)
from .engine import news, pull, push
from .engine.sides import Sides, open_cloud, open_node, sides_of
from .config import Settings
from .errors import CcsyncError, Unreachable, first_line, one_line
from .progress import Stored
from .reasons import Reason

log = logging.getLogger("ccsync.service")

POLL = 0.25  # seconds between two looks at the journals when no notification came
GATHER = 0.2  # seconds: while changes keep coming, a push or pull starts at least this long after the last one ended


class Stop(BaseException):
    """SIGTERM or Ctrl-C: unwinds the work in flight (its transaction rolls back, nothing is lost)."""


ONLINE_PROGRESS = 1000  # an online push or pull of at least this many changes shows its progress (the light blinks)


def set_mode(node: psycopg.Connection, mode: str, reason: Reason | None = None) -> bool:
    """Store the mode (and, offline, why); True when it changed (so each transition is logged once). Going
    offline begins an offline period in the history and makes the reason the last error; reaching the cloud
    again ends the period."""
    with node.transaction():
        was = node.execute("select mode, reason from ccsync.state for update").fetchone()
        if was is None or was == (mode, reason and str(reason)):
            return False
        was_mode, was_reason = was
        node.execute(
            "update ccsync.state set mode = %s, reason = %s, updated_at = now(), "
            "mode_since = case when mode = %s then mode_since else now() end",
            (mode, reason and str(reason), mode),
        )
        if mode == "offline" and reason is not None:
            node.execute("update ccsync.state set last_error = %s, last_error_code = %s, last_error_at = now()",
                         (reasons.sentence(reason), str(reason)))
            if was_mode != "offline" or was_reason != str(reason):
                history.back_online(node)  # (a new reason: a new period)
                history.went_offline(node, reason)
        elif was_mode == "offline" and mode != "offline":
            history.back_online(node)
    return was_mode != mode


class Service:
    def __init__(self, settings: Settings, *, max_backoff: float = 30.0, probe_interval: float = 5.0,
                 safety_interval: float = 30.0, tasks: list[Callable[["Service"], None]] | None = None):
        self.settings = settings
        self.local = settings.need_local()
        self.cloud_dsn = settings.need_cloud()
        self.max_backoff = max_backoff
        self.probe_interval = probe_interval
        self.safety_interval = safety_interval
        self.tasks = tasks or []
        self.online = False
        self.stopping = False  # a SIGTERM or SIGINT came: stop, even if an error raised while unwinding hid it
        self.sides: Sides | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def run(self) -> None:
        home, self.name = open_node(self.local)
        if not home.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            home.close()
            raise CcsyncError(
                f"another `ccsync run` already serves node {self.name!r}: stop it first (one service per PC)"
            )
        self.home = home
        Stored(self.local, conn=home).finish()  # what a killed service left is not a sync in progress
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        log.info("ccsync service started for node %s", self.name)
        try:
            self._loop()
        except Stop:
            log.info("stopping: the work in flight is rolled back and resumes at the next start")
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._close_sides()
            try:
                set_mode(home, "offline", Reason.SERVICE_STOPPED)
                home.close()
            except psycopg.Error:
                pass
            log.info("ccsync service stopped")

    def _stop(self, signum, frame):
        self.stopping = True
        raise Stop()

    def _stop_if_asked(self) -> None:
        """A Stop raised in the middle of a query can be replaced, while the connection unwinds, by the error of
        the rollback that follows it ("another command is already in progress"): the flag keeps the request."""
        if self.stopping:
            raise Stop()

    def _close_sides(self) -> None:
        if self.sides is not None:
            self.sides.close()
            self.sides = None

    # -- the modes -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        backoff, last_reason = 1.0, None
        while True:
            self._stop_if_asked()
            try:
                self._connect()
            except (CcsyncError, psycopg.Error) as exc:
                self._stop_if_asked()
                why = reasons.of(exc)
                reason = one_line(str(exc))
                if set_mode(self.home, "offline", why) or reason != last_reason:  # each new reason is said once
                    log.warning("cannot sync with the cloud: %s (%s): working offline, retrying with backoff",
                                reasons.sentence(why), first_line(exc))
                else:
                    log.debug("still offline (%s); next try in %.1f s", reason, backoff)
                last_reason = reason
                self._run_tasks()
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff, last_reason = 1.0, None
            try:
                if set_mode(self.home, "synchronizing"):
                    log.info("cloud reachable: synchronizing")
                progress = Stored(self.local, conn=self.home)
                try:
                    self._synchronize(progress=progress)
                finally:
                    progress.finish()  # an interrupted sync leaves no stale progress behind
                if set_mode(self.home, "online"):
                    log.info("online: the replica follows the cloud")
                self._online()
            except (psycopg.OperationalError, Unreachable) as exc:
                self._stop_if_asked()
                log.warning("lost the cloud (%s)", first_line(exc))
            except CcsyncError as exc:
                self._stop_if_asked()
                log.error("sync failed: %s", exc)  # (recorded as the last error, in words, by history)
                time.sleep(min(backoff * 5, self.max_backoff))
            self._close_sides()

    def _connect(self) -> None:
        self._close_sides()
        node, name = open_node(self.local)
        cloud = None
        try:
            cloud = open_cloud(self.cloud_dsn, node=name, **CLOUD_LINK)
            self.sides = sides_of(node, cloud, name)
        except Exception:
            for conn in (node, cloud):
                if conn is not None:
                    conn.close()
            raise
        labels.follow(cloud, node)

    def _synchronize(self, progress=None) -> None:
        self._push_and_pull(True, True, progress)

    def _push_and_pull(self, want_push: bool, want_pull: bool, progress=None, looks: dict | None = None) -> None:
        """A push that fails never stops the pull: the PC keeps following the cloud, and the push's error is
        raised once the pull is done (the batch stays pending, the status shows why). `looks`: the looks that
        asked for this push and pull (news.Look), told when their run ended well."""
        failed = None
        if want_push:
            try:
                self._push(progress)
                if looks:
                    looks["node"].done()
            except CcsyncError as exc:
                self._stop_if_asked()
                failed = exc
        if want_pull:
            self._pull(progress)
            if looks:
                looks["cloud"].done()
        if failed is not None:
            raise failed

    def _push(self, progress=None) -> None:
        result = self._recorded("push", push.run, progress)
        if result.get("changes"):
            log.info("pushed %s change(s), %s conflict(s)", result["changes"], result["conflicts"])

    def _pull(self, progress=None) -> None:
        result = self._recorded("pull", pull.run, progress)
        if result.get("changes"):
            log.info("pulled %s change(s)", result["changes"])

    def _recorded(self, direction: str, run, progress=None) -> dict:
        """One push or pull (`run`), in the history, its progress stored, then the rows it skipped refreshed."""
        progress = progress or Stored(self.local, min_total=ONLINE_PROGRESS, conn=self.home)
        try:
            with history.recorded(self.local, direction, conn=self.home) as result:
                result.update(run(self.sides, progress=progress))
                pull.refresh(self.sides)
        finally:
            progress.finish()
        return result

    def _run_tasks(self) -> None:
        for task in self.tasks:
            try:
                task(self)
            except (CcsyncError, psycopg.Error) as exc:
                self._stop_if_asked()
                log.warning("%s failed: %s", getattr(task, "__name__", "task"), exc)

    def _online(self) -> None:
        # LISTEN on connections of their own: a notification that arrives while the work connection runs a
        # push or pull is buffered by the driver, and select() on that socket would not see it
        ears = {
            "node": _db.connect(self.local, role="local database", autocommit=True),
            "cloud": _db.connect(self.cloud_dsn, role="cloud database", autocommit=True, **CLOUD_LINK),
        }
        sel = selectors.DefaultSelector()
        try:
            for side, conn in ears.items():
                conn.execute("listen ccsync_journal")
                sel.register(conn.fileno(), selectors.EVENT_READ, side)
            self._listen(ears, sel)
        finally:
            sel.close()
            for conn in ears.values():
                conn.close()

    def _listen(self, ears: dict, sel: selectors.BaseSelector) -> None:
        cloud = self.sides.cloud
        last_activity = last_safety = time.monotonic()
        first = True  # what committed before LISTEN sent no notification to us
        # a look at each journal decides whether a push or a pull has anything to do (engine/news.py): the cloud's
        # moves with this PC's own pushes too, and a session notifies at most every 50 ms
        looks = {"node": news.Look(), "cloud": news.Look(self.name)}
        last_work = 0.0
        while True:
            if not first:
                for key, _ in sel.select(timeout=POLL):
                    list(ears[key.data].notifies(timeout=0))  # (a notification only wakes us up)
            first = False
            want_push = looks["node"].anything(self.sides.node)
            want_pull = looks["cloud"].anything(cloud)
            now = time.monotonic()
            if now - last_safety > self.safety_interval:
                # now and then a full push and pull whatever the looks say: they also see a table tracked again, the
                # cloud's pruning, and tell the cloud how far this PC has pulled
                want_push = want_pull = True
                last_safety = now
                self.sides.once.clear()  # and register again (a PC removed or bound anew on the cloud meanwhile)
            if want_push or want_pull:
                # a busy practice commits many small transactions: one push (or pull) takes all that committed
                # while it waited, instead of one per commit, which would slow down the practice's own writes
                time.sleep(max(0.0, last_work + GATHER - time.monotonic()))
            self._push_and_pull(want_push, want_pull, looks=looks)
            if want_push or want_pull:
                last_activity = last_work = time.monotonic()
            elif now - last_activity > self.probe_interval:
                cloud.execute("select 1")  # an idle link: make sure the cloud still answers
                last_activity = now
            self._run_tasks()


def run(settings: Settings, **kwargs) -> None:
    Service(settings, **kwargs).run()


def database_for_app(settings: Settings) -> str:
    """The DSN the application should use now, as the one rule decides (`use` of `ccsync status --json`): the
    cloud while it is reachable and no backlog of this PC is being synchronized, the local replica otherwise.
    Always the application's own DSN ([app] cloud / local): this PC's role is ccsync's, never the application's."""
    local = settings.need_local()
    app = {side: settings.need_app(side) for side in ("cloud", "local")}  # both, whichever is used now
    try:
        conn = _db.open_local(local)
    except Unreachable:
        use = mode.when_local_is_down(settings.cloud).use
    else:
        with conn:
            use = mode.current(conn, settings.cloud).use
    return app[use]
