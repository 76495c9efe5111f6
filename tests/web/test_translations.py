"""Every string of the UI has an English translation (the Chinese originals are the message ids)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po

from service import labels
from service.usecases import documents
from service.web.i18n import localize

WEB = Path(__file__).resolve().parents[2] / "service" / "web"
PORTAL = WEB.parent / "portal"  # the public portal's pages share the UI's catalogue
LABELS = WEB.parent / "labels.py"  # the codes' names, extracted too (babel.cfg)
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
BPMN = WEB.parents[1] / "bpmn"
CJK = re.compile(r"[\u3400-\u9fff]")


def untranslated() -> set[str]:
    """The UI's marked strings that the English catalogue has no translation of yet."""
    found = {message for folder in (WEB, PORTAL)
             for _, _, message, _, _ in extract_from_dir(str(folder), METHODS, keywords=KEYWORDS)}
    found |= {message for _, message, _, _ in extract_from_file("python", str(LABELS), keywords=KEYWORDS)}
    found = {m[0] if isinstance(m, tuple) else m for m in found}
    with (WEB / "translations" / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    return found - {m.id for m in catalog if m.id and m.string}


def test_every_ui_string_has_an_english_translation():
    assert sorted(untranslated()) == [], "run `make translations` and translate the new entries"


def test_every_printable_document_has_a_name_in_the_ui():
    """A case page names its documents through labels.DOCUMENTS (the PDFs' own titles stay Chinese)."""
    assert set(labels.DOCUMENTS) == set(documents.KINDS)


def shipped_form_messages() -> list[str]:
    """The messages the shipped forms give a user: `x-min-sum`, `x-validate` and `x-pattern-message`."""
    messages = []
    for path in sorted(BPMN.glob("*.bpmn")):
        for text in re.findall(r"<spiffworkflow:formSchema>(.*?)</spiffworkflow:formSchema>", path.read_text(), re.S):
            schema = json.loads(html.unescape(text))
            messages += [schema["x-min-sum"]["message"]] if "x-min-sum" in schema else []
            messages += [rule["message"] for rule in schema.get("x-validate", [])]
            messages += [prop["x-pattern-message"] for prop in schema.get("properties", {}).values()
                         if "x-pattern-message" in prop]
    return messages


def test_every_message_of_a_shipped_form_has_an_english_half(app):
    """A form's own refusal (votes adding up to nothing) reads in English in the English UI, as jsonschema's do."""
    messages = shipped_form_messages()
    assert messages
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        assert [m for m in messages if CJK.search(localize(m))] == []
