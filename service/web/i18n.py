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
_LEAD_END = re.compile("[)）][:：]")


def select_locale() -> str:
    wanted = request.cookies.get(COOKIE, "")
    return wanted if wanted in LANGUAGES else DEFAULT


def current_language() -> str:
    return str(get_locale() or DEFAULT).split("_")[0]


def localize(message: str | None) -> str:
    """Pick one language out of a use case's bilingual message: "必填 (required)", or one whose bilingual lead
    names what follows it, "未知角色 (unknown): x, y" (the rest, often echoed input, keeps its own closing pair)."""
    if not message:
        return ""
    lead = _bilingual_lead(message)
    if lead is None:
        return _one_language(message)
    (first, second), rest = lead
    chosen = _pick(first, second)
    if chosen is None:
        return _one_language(message)
    if not rest:
        return chosen
    return f"{chosen}：{_one_language(rest)}" if current_language() == "zh" else f"{chosen}: {_one_language(rest)}"


def _one_language(message: str) -> str:
    parts = _bilingual_parts(message)
    chosen = None if parts is None else _pick(*parts)
    return message if chosen is None else chosen


def _pick(first: str, second: str) -> str | None:
    """The half in the page's language, or None unless one half is Chinese and the other is not."""
    chinese, english = (first, second) if _CJK.search(first) else (second, first)
    if not first or not second or not _CJK.search(chinese) or _CJK.search(english):
        return None
    return chinese if current_language() == "zh" else english


def _bilingual_lead(message: str) -> tuple[tuple[str, str], str] | None:
    """"first (second): rest", split at the first bracket pair followed by a colon (no bracket inside it). A
    pattern without repetition, so linear in the message however much of it is echoed input."""
    found = _LEAD_END.search(message)
    if found is None:
        return None
    end = found.start()
    start = max(message.rfind(bracket, 0, end) for bracket in _OPENING)
    second = message[start + 1:end]
    if start < 0 or any(bracket in second for bracket in _OPENING + _CLOSING):
        return None
    return (message[:start].rstrip(), second.strip()), message[found.end():].strip()


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
