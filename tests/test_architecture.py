"""docs/architecture.md stays true: every module, function, SQL object and path it names exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
NAMES = re.findall(r"`([^`\s]+)`", DOC.read_text())


def _resolve(dotted: str):
    """Import the longest module prefix of a dotted name, then walk the attributes that follow."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _sql_objects() -> set[str]:
    files = (ROOT / "sql").glob("*/ccsync.*.sql")
    tables = re.findall(r"^\| `(ccsync\.\w+)`", (ROOT / "sql" / "README.md").read_text(), re.M)
    return {f.name.removesuffix(".sql") for f in files} | set(tables)


@pytest.mark.parametrize("name", sorted({n for n in NAMES if n.startswith("reconciler.")}))
def test_every_python_name_exists(name):
    _resolve(name)


@pytest.mark.parametrize("name", sorted({n for n in NAMES if re.fullmatch(r"ccsync\.\w+", n)}))
def test_every_sql_object_exists(name):
    assert name in _sql_objects(), f"{name} is neither in sql/*/ nor a table of sql/README.md"


@pytest.mark.parametrize("path", sorted({n.rstrip("/") for n in NAMES if "/" in n and not n.startswith("(")}))
def test_every_path_exists(path):
    assert (ROOT / path).exists() or (ROOT / "reconciler" / path).exists(), path


def test_the_doc_names_enough_to_follow():
    # the four paths name their steps: a map that names nothing would pass the tests above
    assert len({n for n in NAMES if n.startswith("reconciler.")}) >= 40
