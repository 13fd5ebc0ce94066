"""systemd unit files for running ccsync as a service: the sync service, the panel, and `ccsync login` at each
user's logon (`ccsync service-units` writes them; the README's "Running ccsync as a service" explains them)."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import CcsyncError


@dataclass(frozen=True)
class Units:
    """Where and as whom the services run."""

    user: str = "ccsync"
    config: str = "/etc/ccsync/ccsync.toml"
    state_dir: str = "/var/lib/ccsync"  # working directory and home of the service user (systemd creates it)
    executable: str = ""  # the ccsync command; empty: the one running now
    panel_port: int = 8600

    def command(self) -> str:
        exe = self.executable or _this_ccsync()
        if not Path(exe).is_absolute():
            raise CcsyncError(f"the ccsync command must be an absolute path for systemd, not {exe!r}")
        return exe


def _this_ccsync() -> str:
    beside = Path(sys.executable).parent / "ccsync"
    return str(beside) if beside.exists() else (shutil.which("ccsync") or str(beside))


def _quote(value: str) -> str:
    """A value in a unit file: systemd splits ExecStart like a shell, and expands % specifiers."""
    return shlex.quote(value).replace("%", "%%")


def _state(u: Units) -> str:
    state = Path(u.state_dir)
    if state.parent == Path("/var/lib"):  # systemd creates it, owned by the service user, 0700
        return f"StateDirectory={state.name}\nStateDirectoryMode=0700"
    return f"ReadWritePaths={_quote(u.state_dir)}"


def _service(u: Units, description: str, args: str) -> str:
    return f"""[Unit]
Description={description}
Wants=network-online.target
After=network-online.target postgresql.service
# keep trying for ever: the local PostgreSQL may start after us, the cloud may be away for days
StartLimitIntervalSec=0

[Service]
Type=simple
User={u.user}
Group={u.user}
{_state(u)}
WorkingDirectory={_quote(u.state_dir)}
Environment=CCSYNC_CONFIG={_quote(u.config)}
# the service user's configuration folder: the panel keeps its session secret there (0600)
Environment=XDG_CONFIG_HOME={_quote(u.state_dir)}
Environment=PYTHONUNBUFFERED=1
ExecStart={_quote(u.command())} {args}
# SIGTERM stops it cleanly: the batch in flight rolls back and resumes at the next start
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure
RestartSec=5s
# logs go to the journal: journalctl -u <this unit>
StandardOutput=journal
StandardError=journal
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def systemd_units(u: Units) -> dict[str, str]:
    """The unit files by name: ccsync.service and ccsync-panel.service (system), ccsync-login.service (user)."""
    if not 0 < u.panel_port < 65536:
        raise CcsyncError(f"invalid panel port {u.panel_port}: choose one from 1 to 65535")
    return {
        "ccsync.service": _service(u, "ccsync sync service: keeps this PC's replica of the practice database current",
                                   "run"),
        "ccsync-panel.service": _service(u, "ccsync admin panel (status, conflicts, Sumehr, history)",
                                         f"panel --port {u.panel_port}"),
        "ccsync-login.service": f"""[Unit]
Description=ccsync login: pull the cloud's changes this PC lacks when a user logs in

[Service]
# a user unit: it runs as the person logging in, who must be able to read the configuration file
Type=oneshot
Environment=CCSYNC_CONFIG={_quote(u.config)}
ExecStart={_quote(u.command())} login
TimeoutStartSec=300

[Install]
WantedBy=default.target
""",
    }


SYSTEM = ("ccsync.service", "ccsync-panel.service")
USER = ("ccsync-login.service",)


def write(u: Units, folder: Path | str, login_folder: Path | str | None = None) -> list[Path]:
    """Write the system units into folder (/etc/systemd/system) and the login unit into login_folder
    (/etc/systemd/user; default: folder)."""
    folders = {name: Path(login_folder or folder) if name in USER else Path(folder) for name in (*SYSTEM, *USER)}
    for target in set(folders.values()):
        if not target.is_dir():
            raise CcsyncError(f"{target} is not a folder: create it, or name another")
    texts = systemd_units(u)
    written = []
    for name, target in folders.items():
        path = target / name
        path.write_text(texts[name], encoding="utf-8")
        written.append(path)
    return written
