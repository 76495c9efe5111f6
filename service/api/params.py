"""Parse query-string parameters: a malformed one is a 400 naming it (API.md: 400 malformed), never a 500.

JSON body fields parsed here stay 422 with `fields`, like any other field that fails its schema.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, overload

from flask import request

from service.errors import BadRequest, Invalid, ServiceError
from service.usecases.forms import within_reach

MAX_ID = 2**31 - 1  # ids, version numbers and the like: beyond what the database's integer columns hold
# ASCII digits only: `int` also takes full-width digits ("１"), underscores ("1_0") and padding (" 1").
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


@overload
def int_arg(name: str, default: int, minimum: int = 1, maximum: int = 10_000) -> int: ...
@overload
def int_arg(name: str, default: None = None, minimum: int = 1, maximum: int = 10_000) -> int | None: ...
def int_arg(name: str, default: int | None = None, minimum: int = 1, maximum: int = 10_000) -> int | None:
    """An integer query parameter within [minimum, maximum]; `default` when absent (400 when malformed)."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not _INTEGER.fullmatch(raw):
        message = "必须是整数 (must be an integer)"
        raise BadRequest(f"{name} must be an integer ({name} 必须是整数)", {name: message})
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadRequest(f"{name} out of range ({name} 超出范围)", {name: f"{minimum}..{maximum}"})
    return value


def api_page(page: dict[str, Any]) -> dict[str, Any]:
    """A use case's page of a list as the API answers it: without `pages`, the web pager's, which the API's lists
    never sent (API.md lists what they answer)."""
    return {key: value for key, value in page.items() if key != "pages"}


def flag_arg(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}", {name: f"可选：{', '.join(choices)}"})
    return value


def list_arg(name: str) -> list[str]:
    """Several values of a parameter, repeated (`type=a&type=b`, as an HTML form sends checkboxes) or
    comma-separated (`type=a,b`), or both; blanks dropped, order kept, each once."""
    values = (part.strip() for raw in request.args.getlist(name) for part in raw.split(","))
    return list(dict.fromkeys(value for value in values if value))


def text_arg(name: str) -> Any:
    return request.args.get(name) or None


def date_arg(name: str) -> date | None:
    return parse_date(name, request.args.get(name) or None, BadRequest)


def parse_date(name: str, raw: Any, error: type[ServiceError] = Invalid) -> date | None:
    """An ISO date from a query argument or a JSON field; None when absent, `error` when malformed."""
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise error(f"{name} must be a date (日期格式应为 YYYY-MM-DD)", {name: "日期格式应为 YYYY-MM-DD"}) from None
    return within_reach(day, name, error)


def int_field(body: dict[str, Any], name: str) -> int | None:
    """An optional integer field of a JSON body (true, 2.5, "2" are not integers: 422)."""
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise Invalid(f"{name} must be an integer", {name: "必须是整数 (must be an integer)"})
    if value is not None and not 1 <= value <= MAX_ID:
        raise Invalid(f"{name} out of range ({name} 超出范围)", {name: f"1..{MAX_ID}"})
    return value
