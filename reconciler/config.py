"""Where the local and cloud databases are: options, then CCSYNC_* environment variables, then ccsync.toml.

ccsync.toml is checked when it is read: the top level, [panel], [practice] and [app] here, [hub] and [sumehr]
by the Sumehr publisher (reconciler.sumehr). Every problem is one line of one error, so a file is fixed in one go; a file
that holds a password or a secret and that others may read gets a warning.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import CcsyncError

CONFIG_FILE = "ccsync.toml"
log = logging.getLogger("ccsync.config")

# the keys of the top level; a section's own keys are checked by its owner (SECTIONS says who)
TOP_LEVEL = {"local": "this PC's database (a PostgreSQL connection string or URI)",
             "cloud": "the cloud database (a PostgreSQL connection string or URI)"}
SECTIONS = {"hub": "reconciler.sumehr", "sumehr": "reconciler.sumehr", "panel": "this module",
            "practice": "this module", "app": "this module"}
# [app]: the databases as the practice application reaches them, with its own role (never ccsync's): what
# reconciler.service.database_for_app() hands out
APP_KEYS = {"cloud": "the cloud database as the practice application connects to it (its own role)",
            "local": "this PC's database as the practice application connects to it (its own role)"}
APP_ENV = {"cloud": "CCSYNC_APP_CLOUD_DSN", "local": "CCSYNC_APP_LOCAL_DSN"}
PANEL_KEYS = {"secret_key": "the panel's session secret", "secret_file": "the file that keeps it"}
# the panel's other keys: (what it must be, a check)
PANEL_OPTIONS = {
    "trusted_hosts": ("a list of host names the panel answers to",
                      lambda v: isinstance(v, list) and all(isinstance(h, str) and h.strip() for h in v)),
    "secure_cookies": ("true or false (true behind HTTPS)", lambda v: isinstance(v, bool)),
    "proxy_hops": ("a whole number from 0 to 5 (proxies in front of the panel)",
                   lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 5),
}

# a password in a key/value connection string (password=...) or in a URI (scheme://user:password@host)
_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


@dataclass
class Settings:
    local: str | None = None
    cloud: str | None = None
    extra: dict = field(default_factory=dict)  # the rest of ccsync.toml: [hub], [sumehr], [panel]...
    app_local: str | None = None  # [app] local: this PC's database as the application reaches it
    app_cloud: str | None = None  # [app] cloud: the cloud as the application reaches it

    def need_local(self) -> str:
        if not self.local:
            raise CcsyncError("no local database: pass --local DSN, set CCSYNC_LOCAL_DSN or add local = \"…\" to ccsync.toml")
        return self.local

    def need_cloud(self) -> str:
        if not self.cloud:
            raise CcsyncError("no cloud database: pass --cloud DSN, set CCSYNC_CLOUD_DSN or add cloud = \"…\" to ccsync.toml")
        return self.cloud

    def need_app(self, side: str) -> str:
        """The application's DSN for `side` ("cloud" or "local"): its own role, never this PC's."""
        dsn = self.app_cloud if side == "cloud" else self.app_local
        if not dsn:
            where = "on the cloud" if side == "cloud" else "on this PC"
            raise CcsyncError(f"no database for the application {where}: add {side} = \"…\" under [app] in "
                              f"ccsync.toml (or set {APP_ENV[side]}), connecting as the application's own role, "
                              "not this PC's")
        return dsn


def file_path(path: Path | str | None = None) -> tuple[Path, bool]:
    """The configuration file and whether it was named explicitly (argument or $CCSYNC_CONFIG)."""
    named = path or os.environ.get("CCSYNC_CONFIG")
    return Path(named or CONFIG_FILE), bool(named)


def load_file(path: Path | str | None = None) -> dict:
    """ccsync.toml (or the named file) read and checked; {} when there is none and none was named."""
    path, named = file_path(path)
    if not path.exists():
        if named:
            raise CcsyncError(f"the configuration file {path} does not exist: check $CCSYNC_CONFIG")
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CcsyncError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise CcsyncError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    problems = check(doc)
    if problems:
        raise CcsyncError(f"{path} has {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))
    warn_if_readable(path, doc)
    return doc


def _kind(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _not_finite(doc, where: str = ""):
    """(where, value) of every number that is not finite (nan, inf): no setting of ccsync takes one."""
    if isinstance(doc, float) and not math.isfinite(doc):
        yield where, doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            if not key.isprintable():  # a line break in a key would split the one-line problem
                key = repr(key)
            inner = f"[{key}]" if not where and key in SECTIONS else f"{where} {key}" if where.endswith("]") else \
                f"{where}.{key}" if where else key
            yield from _not_finite(value, inner)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _not_finite(value, f"{where}[{i}]")


def check(doc: dict) -> list[str]:
    """The problems of a configuration document, one line each (empty: it is fine)."""
    problems = [f"{where} = {value} is not a finite number" for where, value in _not_finite(doc)]
    for key, value in doc.items():
        if key in TOP_LEVEL:
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{key} must be a non-empty string, {TOP_LEVEL[key]}; it is {_kind(value)}")
        elif key in SECTIONS:
            if not isinstance(value, dict):
                problems.append(f"{key} must be a table: write [{key}] on a line of its own, its keys below")
        else:
            known = ", ".join([*TOP_LEVEL, *(f"[{s}]" for s in SECTIONS)])
            problems.append(f"unknown key {key!r} at the top level (known: {known})")
    panel = doc.get("panel")
    if isinstance(panel, dict):
        for key, value in panel.items():
            if key in PANEL_OPTIONS:
                what, ok = PANEL_OPTIONS[key]
                if not ok(value):
                    problems.append(f"[panel] {key} must be {what}; it is {_kind(value)}")
            elif key not in PANEL_KEYS:
                problems.append(f"unknown key {key!r} in [panel] (known: {', '.join([*PANEL_KEYS, *PANEL_OPTIONS])})")
            elif not isinstance(value, str) or not value:
                problems.append(f"[panel] {key} must be a non-empty string, {PANEL_KEYS[key]}; it is {_kind(value)}")
    app = doc.get("app")
    if isinstance(app, dict):
        for key, value in app.items():
            if key not in APP_KEYS:
                problems.append(f"unknown key {key!r} in [app] (known: {', '.join(APP_KEYS)})")
            elif not isinstance(value, str) or not value.strip():
                problems.append(f"[app] {key} must be a non-empty string, {APP_KEYS[key]}; it is {_kind(value)}")
    practice = doc.get("practice")
    if isinstance(practice, dict):
        for key, value in practice.items():
            if key != "timezone":
                problems.append(f"unknown key {key!r} in [practice] (known: timezone)")
            elif not isinstance(value, str) or not _is_zone(value):
                problems.append(f"[practice] timezone must be an IANA time zone such as \"Europe/Brussels\"; "
                                f"it is {_kind(value) if not isinstance(value, str) else repr(value)}")
    return problems


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def secrets_in(doc: dict) -> list[str]:
    """Which keys of a configuration document hold a password or a secret."""
    held = [f"a password in {key}" for key in TOP_LEVEL if isinstance(doc.get(key), str) and _PASSWORD.search(doc[key])]
    app = doc.get("app")
    if isinstance(app, dict):
        held += [f"a password in [app] {key}" for key in APP_KEYS
                 if isinstance(app.get(key), str) and _PASSWORD.search(app[key])]
    panel = doc.get("panel")
    if isinstance(panel, dict) and panel.get("secret_key"):
        held.append("the panel's secret_key")
    return held


def warn_if_readable(path: Path, doc: dict) -> bool:
    """Warn when a file that holds a password or a secret may be read by every user of the machine (POSIX
    permissions: "others"; its group may read it, as a service's group reads /etc/ccsync/ccsync.toml; on
    Windows the file's ACL decides and is not checked). True when it warned."""
    if os.name != "posix":
        return False
    held = secrets_in(doc)
    if not held or not path.stat().st_mode & stat.S_IRWXO:
        return False
    log.warning("warning: %s holds %s and every user of this machine may read it: chmod o-rwx %s (or keep the "
                "password in ~/.pgpass)", path, " and ".join(held), path)
    return True


def resolve(local: str | None = None, cloud: str | None = None, config_path: Path | str | None = None) -> Settings:
    """Options win over the environment, which wins over ccsync.toml in the working directory."""
    doc = load_file(config_path)
    app = doc.get("app") or {}
    return Settings(
        local=local or os.environ.get("CCSYNC_LOCAL_DSN") or doc.get("local"),
        cloud=cloud or os.environ.get("CCSYNC_CLOUD_DSN") or doc.get("cloud"),
        extra={k: v for k, v in doc.items() if k not in TOP_LEVEL and k != "app"},
        app_local=os.environ.get(APP_ENV["local"]) or app.get("local"),
        app_cloud=os.environ.get(APP_ENV["cloud"]) or app.get("cloud"),
    )
