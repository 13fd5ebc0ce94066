"""Access to the SQL files that ship with ccsync (the `ccsync_sql` package, `sql/` in the source tree)."""

from importlib import resources


def read(relpath: str) -> str:
    """Return the text of one SQL file, e.g. ``revisions/v1_core.sql``."""
    return resources.files("ccsync_sql").joinpath(relpath).read_text(encoding="utf-8")


def install_order() -> list[str]:
    """The function and view files in dependency order, as listed by ``install.sql``."""
    return [
        line.split(maxsplit=1)[1].strip()
        for line in read("install.sql").splitlines()
        if line.startswith("\\i ")
    ]
