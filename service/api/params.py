"""Parse query-string parameters, turning bad values into 422s instead of 500s."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import request

from service.errors import Invalid


def int_arg(name: str, default: int | None = None, minimum: int = 1, maximum: int = 10_000) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        message = "必须是整数 (must be an integer)"
        raise Invalid(f"{name} must be an integer ({name} 必须是整数)", {name: message}) from None
    if not minimum <= value <= maximum:
        raise Invalid(f"{name} out of range ({name} 超出范围)", {name: f"{minimum}..{maximum}"})
    return value


def flag_arg(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise Invalid(f"{name} must be one of {', '.join(choices)}", {name: f"可选：{', '.join(choices)}"})
    return value


def text_arg(name: str) -> Any:
    return request.args.get(name) or None


def date_arg(name: str) -> date | None:
    return parse_date(name, request.args.get(name) or None)


def parse_date(name: str, raw: Any) -> date | None:
    """An ISO date from a query argument or a JSON field; None when absent, 422 when malformed."""
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be a date (日期格式应为 YYYY-MM-DD)", {name: "日期格式应为 YYYY-MM-DD"}) from None
