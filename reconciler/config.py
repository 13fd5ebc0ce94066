"""Where the local and cloud databases are: options, then CCSYNC_* environment variables, then ccsync.toml."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CcsyncError

CONFIG_FILE = "ccsync.toml"


@dataclass
class Settings:
    local: str | None = None
    cloud: str | None = None
    extra: dict = field(default_factory=dict)  # the rest of ccsync.toml: [hub], [sumehr], [panel]...

    def need_local(self) -> str:
        if not self.local:
            raise CcsyncError("no local database: pass --local DSN, set CCSYNC_LOCAL_DSN or add local = \"…\" to ccsync.toml")
        return self.local

    def need_cloud(self) -> str:
        if not self.cloud:
            raise CcsyncError("no cloud database: pass --cloud DSN, set CCSYNC_CLOUD_DSN or add cloud = \"…\" to ccsync.toml")
        return self.cloud


def load_file(path: Path | str | None = None) -> dict:
    path = Path(path or os.environ.get("CCSYNC_CONFIG") or CONFIG_FILE)
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CcsyncError(f"{path} is not valid TOML: {exc}") from None


def resolve(local: str | None = None, cloud: str | None = None, config_path: Path | str | None = None) -> Settings:
    """Options win over the environment, which wins over ccsync.toml in the working directory."""
    doc = load_file(config_path)
    return Settings(
        local=local or os.environ.get("CCSYNC_LOCAL_DSN") or doc.get("local"),
        cloud=cloud or os.environ.get("CCSYNC_CLOUD_DSN") or doc.get("cloud"),
        extra={k: v for k, v in doc.items() if k not in ("local", "cloud")},
    )
