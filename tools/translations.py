"""The panel's translations: extract the strings of web/ (Babel), keep each language's .po in step, compile the .mo.

    python tools/translations.py           # after changing a string: update the .po files, then translate
    python tools/translations.py --check   # what tests/web/test_i18n.py runs: every string translated, .mo current
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "web" / "translations"
LANGUAGES = ("fr", "nl")
METHODS = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]


def extracted() -> Catalog:
    catalog = Catalog(project="ccsync")
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    for filename, lineno, message, comments, context in extract_from_dir(ROOT, METHODS, keywords=keywords):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(lang: str) -> Path:
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def load(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, project="ccsync")
    with path.open("rb") as f:
        return read_po(f, locale=lang)


def update() -> None:
    template = extracted()
    for lang in LANGUAGES:
        catalog = load(lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path = po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, catalog, omit_header=False, no_location=True, sort_output=True, width=120)
        with path.with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog)


def problems() -> list[str]:
    """Strings without a translation, and .mo files that do not match their .po."""
    found = []
    wanted = {m.id for m in extracted() if m.id}
    for lang in LANGUAGES:
        catalog = load(lang)
        have = {m.id: m for m in catalog if m.id}
        for msgid in sorted(wanted):
            m = have.get(msgid)
            if m is None or not m.string or m.fuzzy:
                found.append(f"{lang}: not translated: {msgid!r}")
        mo = po_path(lang).with_suffix(".mo")
        if not mo.exists():
            found.append(f"{lang}: {mo.name} missing: run `python tools/translations.py`")
            continue
        buf = io.BytesIO()
        write_mo(buf, catalog)
        with mo.open("rb") as f:
            compiled = {m.id: m.string for m in read_mo(f) if m.id}
        expected = {m.id: m.string for m in read_mo(io.BytesIO(buf.getvalue())) if m.id}
        if compiled != expected:
            found.append(f"{lang}: {mo.name} is older than {po_path(lang).name}: run `python tools/translations.py`")
    return found


if __name__ == "__main__":
    if "--check" in sys.argv:
        issues = problems()
        print("\n".join(issues) or "every string is translated")
        sys.exit(1 if issues else 0)
    update()
