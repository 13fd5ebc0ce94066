"""ccsync's engine: everything cli.py and web/ call lives here; this module lists the public API."""

from . import conflicts, service, status, sync
from .capture import POLICIES, tables, track, untrack
from .errors import CcsyncError, NotInstalled
from .schema import head, install, stamp_status, uninstall

__all__ = [
    "POLICIES",
    "CcsyncError",
    "NotInstalled",
    "head",
    "install",
    "conflicts",
    "service",
    "stamp_status",
    "status",
    "sync",
    "tables",
    "track",
    "uninstall",
    "untrack",
]
