"""Rows read from the database are named, not indexed: no `row[1]`, `r[5]` on a fetched row in reconciler/ or web/
(psycopg.rows.class_row with a small dataclass, or unpacking into names). `[0]` stays fine: the one value of a
one-column query (`fetchone()[0]`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(p for g in ("reconciler/**/*.py", "web/**/*.py", "cli.py") for p in ROOT.glob(g) if p.is_file())
FETCH_ONE = {"fetchone"}
FETCH_MANY = {"fetchall", "fetchmany", "execute"}  # iterating a cursor (what execute returns) yields its rows


def _method(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _targets(target: ast.AST) -> list[str]:
    return [target.id] if isinstance(target, ast.Name) else []


def positional_rows(source: str) -> list[tuple[int, str]]:
    """(line, text) of each positional index beyond 0 on a fetched row, function by function."""
    tree = ast.parse(source)
    found = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    for scope in [tree, *scopes]:
        rows: set[str] = set()  # names holding one row
        lists: set[str] = set()  # names holding rows
        nodes = list(ast.walk(scope))
        for node in nodes:  # what each name holds, wherever it is bound in the scope
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                kind = _method(node.value)
                names = _targets(node.targets[0])
                if kind in FETCH_ONE:
                    rows.update(names)
                elif kind in FETCH_MANY:
                    lists.update(names)
        for node in nodes:
            if isinstance(node, (ast.For, ast.comprehension)):
                source_ = node.iter
                if _method(source_) in FETCH_MANY or isinstance(source_, ast.Name) and source_.id in lists:
                    rows.update(_targets(node.target))
        for node in nodes:
            if not isinstance(node, ast.Subscript):
                continue
            index = node.slice
            if not (isinstance(index, ast.Constant) and isinstance(index.value, int) and index.value >= 1):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in rows or _method(value) in FETCH_ONE:
                found.append((node.lineno, ast.unparse(node)))
    return sorted(set(found))


def test_the_check_finds_what_it_must_and_nothing_else():
    bad = ("def f(conn):\n"
           "    row = conn.execute('select a, b').fetchone()\n"
           "    x = conn.execute('select a, b').fetchone()[1]\n"
           "    for r in conn.execute('select a, b'):\n"
           "        print(r[2])\n"
           "    rows = conn.execute('select a, b').fetchall()\n"
           "    return [r[1] for r in rows], row[1]\n")
    assert positional_rows(bad) == [(3, "conn.execute('select a, b').fetchone()[1]"), (5, "r[2]"), (7, "r[1]"),
                                    (7, "row[1]")]
    fine = ("def f(conn, pair, error):\n"
            "    n = conn.execute('select count(*)').fetchone()[0]\n"
            "    a, b = conn.execute('select a, b').fetchone()\n"
            "    return n, a, b, pair[1], error[1]\n")
    assert positional_rows(fine) == []


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(ROOT))) for p in FILES])
def test_fetched_rows_are_named_not_indexed(path):
    found = positional_rows(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(ROOT)} reads rows by position: "
                       + ", ".join(f"line {line}: {text}" for line, text in found)
                       + " (name them: psycopg.rows.class_row with a small dataclass, or unpack them)")
