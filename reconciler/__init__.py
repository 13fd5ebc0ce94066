"""ccsync's engine: everything cli.py and web/ call lives here; this module lists the public API."""

from . import conflicts, history, labels, mode, nodes, reasons, refusal_reasons, service, status, sync
from .kinds import KINDS, POLICIES, Kind, Policy
from .schema.roles import grant, pc_add
from .schema.track import tables, track, untrack
from .errors import CcsyncError, NotInstalled

_SCHEMA = ("head", "install", "uninstall")


def __getattr__(name: str):
    # the schema functions load Alembic and SQLAlchemy (half a second): only when they are used
    if name in _SCHEMA:
        from .schema import install as schema

        return getattr(schema, name)
    raise AttributeError(f"module 'reconciler' has no attribute {name!r}")

__all__ = [
    "KINDS",
    "Kind",
    "POLICIES",
    "Policy",
    "CcsyncError",
    "NotInstalled",
    "head",
    "install",
    "conflicts",
    "grant",
    "history",
    "labels",
    "mode",
    "nodes",
    "pc_add",
    "reasons",
    "refusal_reasons",
    "service",
    "status",
    "sync",
    "tables",
    "track",
    "uninstall",
    "untrack",
]
