"""The sync commands as the CLI and the service call them: init, push, pull and sync (push, then pull)."""

from __future__ import annotations

import time

from .engine import pull as pull_mod
from .engine import push as push_mod
from .engine import initial_copy as snapshot
from . import history, labels
from .engine.sides import open_cloud, open_node, open_sides, sides_of
from .errors import Unreachable
from .config import Settings
from .progress import Progress


def init(settings: Settings, *, force: bool = False, progress: Progress | None = None) -> dict:
    local, cloud = settings.need_local(), settings.need_cloud()
    with history.recorded(local, "init") as result, open_sides(local, cloud) as sides:
        result.update(snapshot.run(sides, force=force, progress=progress))
        result["changes"] = result["rows"]
        labels.follow(sides.cloud, sides.node)
    return result


def push(settings: Settings, *, progress: Progress | None = None) -> dict:
    local, cloud = settings.need_local(), settings.need_cloud()
    with history.recorded(local, "push") as result, open_sides(local, cloud) as sides:
        result.update(push_mod.run(sides, progress=progress))
        result["refreshed"] = pull_mod.refresh(sides)
    return result


def pull(settings: Settings, *, progress: Progress | None = None) -> dict:
    local, cloud = settings.need_local(), settings.need_cloud()
    with history.recorded(local, "pull") as result, open_sides(local, cloud) as sides:
        labels.follow(sides.cloud, sides.node)
        result.update(pull_mod.run(sides, progress=progress))
        result["refreshed"] = pull_mod.refresh(sides)
    return result


def sync(settings: Settings, *, progress: Progress | None = None) -> dict:
    """Push the local backlog, then pull what the cloud has; the rows a pull skipped are refreshed."""
    local, cloud = settings.need_local(), settings.need_cloud()
    started = time.monotonic()
    with history.recorded(local, "sync") as result, open_sides(local, cloud) as sides:
        labels.follow(sides.cloud, sides.node)
        pushed = push_mod.run(sides, progress=progress)
        pull_mod.refresh(sides)
        pulled = pull_mod.run(sides, progress=progress)
        refreshed = pull_mod.refresh(sides)
        result.update({
            "pushed": pushed, "pulled": pulled, "refreshed": refreshed,
            "changes": pushed["changes"] + pulled["changes"],
            "transactions": pushed["transactions"] + pulled["transactions"],
            "conflicts": pushed["conflicts"],
            "seconds": round(time.monotonic() - started, 3),
        })
    return result


def login(settings: Settings, *, progress: Progress | None = None) -> dict:
    """At a user's login: how many cloud changes this PC lacks, pulled now. Offline is fine (mode 'offline').

    JSON keys: mode, node, pending_pull (null offline), pulled, conflicts, seconds.
    """
    local = settings.need_local()
    started = time.monotonic()
    node, name = open_node(local)
    try:
        try:
            cloud = open_cloud(settings.need_cloud(), node=name, connect_timeout=3)
        except Unreachable as exc:
            return {"mode": "offline", "node": name, "pending_pull": None, "pulled": 0, "conflicts": 0,
                    "seconds": round(time.monotonic() - started, 3), "reason": str(exc)}
        with sides_of(node, cloud, name) as sides, history.recorded(local, "login") as result:
            labels.follow(cloud, node)
            pending = pull_mod.pending_count(sides)
            result.update(pull_mod.run(sides, progress=progress))
            pull_mod.refresh(sides)
        return {"mode": "online", "node": name, "pending_pull": pending, "pulled": result["changes"],
                "conflicts": 0, "seconds": round(time.monotonic() - started, 3)}
    finally:
        if not node.closed:
            node.close()
