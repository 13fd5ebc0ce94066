"""The house keeps its layers: the doors (cli.py, web/) never reach into the engine, the engine never reaches
up into the service, status, Sumehr or the developer tools, and no module hides a cycle in a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module imported, inside a function?) for every import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                found.append((mod, in_function))
                found.extend((f"{mod}.{a.name}", in_function) for a in child.names)
            visit(child, inside)

    visit(tree, False)
    return found


def _files(*globs: str) -> list[Path]:
    out = []
    for g in globs:
        out.extend(p for p in ROOT.glob(g) if p.is_file())
    return sorted(out)


def _reaches(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


DOORS = _files("cli.py", "web/**/*.py")
ENGINE = _files("reconciler/engine/**/*.py")
LIBRARY = _files("reconciler/**/*.py")


@pytest.mark.parametrize("path", DOORS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_doors_never_import_the_engine(path):
    bad = [m for m, _ in _imports(path) if _reaches(m, "reconciler.engine")]
    assert not bad, f"{path.name} imports {bad}: call the public API in reconciler/ instead"


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_never_imports_upward(path):
    upward = ("reconciler.sumehr", "reconciler.service", "reconciler.status", "reconciler.devtools",
              "reconciler.sync", "reconciler.mode", "web", "cli")
    bad = [m for m, _ in _imports(path) if any(_reaches(m, u) for u in upward)]
    assert not bad, f"{path.name} imports {bad}: the engine is called, it does not call up"


@pytest.mark.parametrize("path", _files("reconciler/**/*.py"), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_the_doors_or_the_devtools(path):
    bad = [m for m, _ in _imports(path) if _reaches(m, "web") or _reaches(m, "cli")]
    if "devtools" not in path.parts:
        bad += [m for m, _ in _imports(path) if _reaches(m, "reconciler.devtools")]
    assert not bad, f"{path.name} imports {bad}"


# an import inside a function that is not a cycle dodge: Alembic and SQLAlchemy (half a second) load only for
# the commands that change a schema
LAZY_OK = {"reconciler.schema.install"}


def _lazy_ok(m: str) -> bool:
    return any(m == ok or ok.startswith(m + ".") or m.startswith(ok + ".") for ok in LAZY_OK)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_inside_a_function_dodges_a_cycle(path):
    if "devtools" in path.parts:
        return  # the developer tools start servers and simulators: they import what they run when they run it
    inner = [m for m, inside in _imports(path) if inside and m.startswith("reconciler") and not _lazy_ok(m)]
    assert not inner, f"{path.name} imports {inner} inside a function: move it to the top (a cycle is a layering bug)"
