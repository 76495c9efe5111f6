"""The UI's language: Chinese unless the visitor switched to English (a `lang` cookie)."""

from __future__ import annotations

import re

from flask import request
from flask_babel import get_locale

DEFAULT = "zh"
LANGUAGES = ("zh", "en")
COOKIE = "lang"
_CJK = re.compile(r"[\u3400-\u9fff]")
_OPENING, _CLOSING = "(（", ")）"


def select_locale() -> str:
    wanted = request.cookies.get(COOKIE, "")
    return wanted if wanted in LANGUAGES else DEFAULT


def current_language() -> str:
    return str(get_locale() or DEFAULT).split("_")[0]


def localize(message: str | None) -> str:
    """Pick one language out of a use case's bilingual message, e.g. "必填 (required)"."""
    if not message:
        return ""
    parts = _bilingual_parts(message)
    if parts is None:
        return message
    first, second = parts
    chinese, english = (first, second) if _CJK.search(first) else (second, first)
    if not _CJK.search(chinese) or _CJK.search(english):
        return message
    return chinese if current_language() == "zh" else english


def _bilingual_parts(message: str) -> tuple[str, str] | None:
    """"first (second)": the text before the last bracket pair, which closes the message, and the text inside
    it (no bracket of its own). Found by scanning, not a backtracking pattern: messages echo request input
    (an unknown key in a path), and `.*?\\s*` over a long run of spaces took seconds that held every thread."""
    text = message.rstrip()
    if not text or text[-1] not in _CLOSING:
        return None
    start = max(text.rfind(bracket) for bracket in _OPENING)
    second = text[start + 1:-1]
    if start < 0 or any(bracket in second for bracket in _OPENING + _CLOSING):
        return None
    return text[:start].rstrip(), second
