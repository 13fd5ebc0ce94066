"""`ccsync panel`: where the session secret comes from, and serving the panel with waitress."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

import waitress

import platformdirs

from reconciler import db as _db
from reconciler.config import Settings
from reconciler.errors import CcsyncError

from reconciler import panel_users as users

from . import MIN_SECRET_LENGTH, create_app

SECRET_ENV = "CCSYNC_PANEL_SECRET"


def _panel_section(settings: Settings) -> dict:
    panel = settings.extra.get("panel") or {}
    if not isinstance(panel, dict):
        raise CcsyncError("panel in ccsync.toml must be a table: [panel]")
    return panel


def secret_path(settings: Settings, node: str) -> Path:
    """[panel] secret_file, else panel-NODE.secret in the user's configuration folder (platformdirs: on Linux
    $XDG_CONFIG_HOME/ccsync or ~/.config/ccsync), never the working directory."""
    panel = _panel_section(settings)
    if panel.get("secret_file"):
        return Path(str(panel["secret_file"])).expanduser()
    return platformdirs.user_config_path("ccsync") / f"panel-{node}.secret"


def secret_key(settings: Settings, node: str, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The session secret and where it came from: $CCSYNC_PANEL_SECRET, then [panel] secret_key in
    ccsync.toml, then the secret file, created once with 0600 permissions when it does not exist."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_ENV):
        return env[SECRET_ENV], f"${SECRET_ENV}"
    panel = _panel_section(settings)
    if panel.get("secret_key"):
        return str(panel["secret_key"]), "ccsync.toml [panel] secret_key"
    path = secret_path(settings, node)
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise CcsyncError(f"{path} holds the panel's secret but others can read it: chmod 600 {path}") from None
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) < MIN_SECRET_LENGTH:
            raise CcsyncError(f"{path} holds a secret shorter than {MIN_SECRET_LENGTH} characters: delete it "
                              "and a new one is generated") from None
        return secret, str(path)
    except OSError as exc:
        raise CcsyncError(f"cannot create the panel's secret file {path}: {exc.strerror}; set secret_key "
                          f"under [panel] in ccsync.toml or ${SECRET_ENV}") from None
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret, f"{path} (generated now)"


def check_database(settings: Settings) -> tuple[str, int]:
    """The node's name and its number of panel users; a clear error when the database is not ready."""
    with _db.connect(settings.need_local(), role="local database") as conn:
        name = _db.identity(conn)
        users.ensure_table(conn)
        return name, users.count(conn)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def panel_config(settings: Settings, host: str) -> dict:
    """The app's settings from [panel] in ccsync.toml (checked when the file is read, reconciler.config): the
    host names it answers to (the loopback names, the address it listens on, trusted_hosts), Secure cookies
    (secure_cookies = true behind HTTPS), and how many proxies in front of it may set X-Forwarded-For/-Proto/-Host
    (proxy_hops)."""
    panel = _panel_section(settings)
    trusted = ["127.0.0.1", "localhost", "::1", "[::1]"]
    if host not in ("0.0.0.0", "::", "") and host not in trusted:
        trusted.append(host)
    return {"TRUSTED_HOSTS": trusted + list(panel.get("trusted_hosts") or []),
            "PROXY_HOPS": int(panel.get("proxy_hops", 0)), "SESSION_COOKIE_SECURE": bool(panel.get("secure_cookies"))}


# waitress: a body larger than the app accepts is refused before it is read; a connection that stays silent is
# closed soon, and more connections are accepted than a few idle ones can exhaust
CONNECTION_LIMIT = 500
CHANNEL_TIMEOUT = 15  # seconds without any byte from the client


def waitress_options(app) -> dict:
    return {"max_request_body_size": app.config["MAX_CONTENT_LENGTH"], "connection_limit": CONNECTION_LIMIT,
            "channel_timeout": CHANNEL_TIMEOUT, "cleanup_interval": 5, "max_request_header_size": 64 * 1024}


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8600, *, threads: int = 8,
          echo: Callable[[str], None] = print) -> None:
    """Serve the panel with waitress until Ctrl-C or SIGTERM."""
    node, count = check_database(settings)  # first: nothing is written for a panel that cannot start
    secret, source = secret_key(settings, node)
    app = create_app({"SETTINGS": settings, "SECRET_KEY": secret, **panel_config(settings, host)})
    try:
        server = waitress.create_server(app, host=host, port=port, threads=threads, ident="ccsync panel",
                                        **waitress_options(app))
    except OSError as exc:
        raise CcsyncError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port") from None
    shown = f"[{host}]" if ":" in host else host
    echo(f"ccsync panel of node {node} on http://{shown}:{getattr(server, 'effective_port', port)}/ (Ctrl-C stops it)")
    echo(f"session secret from {source}")
    if count == 0:
        echo("no one can log in yet: add a user with `ccsync panel-user add NAME`")
    if not is_loopback(host):
        echo(f"warning: the panel listens on {host}, reachable from the network: put it behind HTTPS")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
