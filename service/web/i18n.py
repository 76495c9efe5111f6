"""The UI's language: Chinese unless the visitor switched to English (a `lang` cookie)."""

from __future__ import annotations

import re

from flask import request
from flask_babel import get_locale

DEFAULT = "zh"
LANGUAGES = ("zh", "en")
COOKIE = "lang"
_CJK = re.compile(r"[\u3400-\u9fff]")
_BILINGUAL = re.compile(r"^(?P<first>.*?)\s*[(（](?P<second>[^()（）]*)[)）]\s*$", re.S)


def select_locale() -> str:
    wanted = request.cookies.get(COOKIE, "")
    return wanted if wanted in LANGUAGES else DEFAULT


def current_language() -> str:
    return str(get_locale() or DEFAULT).split("_")[0]


def localize(message: str | None) -> str:
    """Pick one language out of a use case's bilingual message, e.g. "必填 (required)"."""
    if not message:
        return ""
    match = _BILINGUAL.match(message)
    if match is None:
        return message
    first, second = match.group("first"), match.group("second")
    chinese, english = (first, second) if _CJK.search(first) else (second, first)
    if not _CJK.search(chinese) or _CJK.search(english):
        return message
    return chinese if current_language() == "zh" else english
