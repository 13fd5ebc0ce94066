"""Fault injection for the crash tests: CCSYNC_FAULT=name[:n] kills this process (SIGKILL) at the n-th
time it passes the named checkpoint. Unset (always, outside tests), a checkpoint costs one dict lookup."""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("CCSYNC_FAULT", "")
_name, _, _count = _spec.partition(":")
_left = {_name: int(_count or 1)} if _name else {}


def checkpoint(name: str) -> None:
    if name in _left:
        _left[name] -= 1
        if _left[name] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)
