"""Every string of the UI has an English translation (the Chinese originals are the message ids)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "service" / "web"
PORTAL = WEB.parent / "portal"  # the public portal's pages share the UI's catalogue
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}


def test_every_ui_string_has_an_english_translation():
    found = {message for folder in (WEB, PORTAL)
             for _, _, message, _, _ in extract_from_dir(str(folder), METHODS, keywords=KEYWORDS)}
    found = {m[0] if isinstance(m, tuple) else m for m in found}
    with (WEB / "translations" / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id for m in catalog if m.id and m.string}
    assert sorted(found - translated) == [], "run `make translations` and translate the new entries"
