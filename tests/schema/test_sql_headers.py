"""Every SQL file of sql/functions and sql/views says, in its PgQ-style header, exactly what it creates: the
object named like the file, a function with the number of arguments it takes (or `trigger`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SQL = Path(__file__).resolve().parents[2] / "sql"
FILES = sorted((SQL / "functions").glob("*.sql")) + sorted((SQL / "views").glob("*.sql"))


def _arguments(text: str, name: str) -> list[str]:
    """The top-level input arguments of `create ... function name(...)` (OUT arguments are its result)."""
    start = re.search(rf"create\s+(or\s+replace\s+)?function\s+{re.escape(name)}\s*\(", text, re.I)
    assert start, f"no create function {name}"
    depth, args, current = 1, [], ""
    for ch in text[start.end():]:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                break
        if ch == "," and depth == 1:
            args.append(current)
            current = ""
        else:
            current += ch
    args.append(current)
    return [a.strip() for a in args if a.strip() and not re.match(r"out\s", a.strip(), re.I)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_header_names_what_the_file_creates(path):
    text = path.read_text()
    name = path.name.removesuffix(".sql")
    header = re.match(r"-- -+\n-- (Function|View): (\S+?)(\((\w+)\))?\n", text)
    assert header, f"{path.name}: no PgQ-style header (-- Function: name(n) or -- View: name)"
    kind, named, _, count = header.groups()
    assert named == name, f"{path.name}: its header names {named}"
    if kind == "View":
        assert re.search(rf"create\s+(or\s+replace\s+)?view\s+{re.escape(name)}\b", text, re.I)
        return
    returns_trigger = re.search(rf"function\s+{re.escape(name)}\s*\([^)]*\)\s*returns\s+trigger", text, re.I)
    expected = "trigger" if returns_trigger else str(len(_arguments(text, name)))
    assert count == expected, f"{path.name}: the header says ({count}), the function takes ({expected})"


def test_every_file_is_loaded_by_install_sql():
    loaded = set(re.findall(r"^\\i (\S+)", (SQL / "install.sql").read_text(), re.M))
    assert {f"{p.parent.name}/{p.name}" for p in FILES} <= loaded
